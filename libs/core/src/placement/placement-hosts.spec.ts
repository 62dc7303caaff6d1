import { describe, expect, it } from 'vitest';
import { type HostRecord } from '../inventory/host.port';
import { placementHosts } from './placement-hosts';

const base: HostRecord = {
  id: 'h1',
  name: 'xen1',
  address: '10.0.0.1',
  port: 22,
  sshUser: 'norm',
  sudo: true,
  hostKeyFingerprint: 'SHA256:x',
  labels: {},
  status: 'online',
  maintenance: false,
  placementBlockedReason: null,
  consecutiveSyncFailures: 0,
  limits: {},
  totalMemoryMb: 32_768,
  freeMemoryMb: 16_384,
  nrCpus: 8,
  xenVersion: '4.17',
  storageTotalMb: 100_000,
  storageFreeMb: 50_000,
  volumeGroups: [],
  observedDomains: [
    { name: 'norm-seen', domid: 1, memoryMb: 1024, vcpus: 3, state: 'r-----', macs: [], dying: false },
  ],
  lastSyncAt: new Date(),
  lastSyncError: null,
  createdAt: new Date(),
  updatedAt: new Date(),
};

describe('placementHosts', () => {
  it('counts reservations whose domain is not visible yet, and group members from both sources', () => {
    const [h] = placementHosts(
      [base],
      [
        { hostId: 'h1', memoryMb: 2048, vcpus: 2, diskGb: 10, domainName: null, antiAffinityGroup: 'db' },
        {
          hostId: 'h1',
          memoryMb: 1024,
          vcpus: 3,
          diskGb: 5,
          domainName: 'norm-seen',
          antiAffinityGroup: null,
        },
        { hostId: 'other', memoryMb: 9999, vcpus: 9, diskGb: 9, domainName: null, antiAffinityGroup: 'db' },
      ],
      [
        { hostId: 'h1', antiAffinityGroup: 'db' },
        { hostId: 'h1', antiAffinityGroup: null },
      ],
    );
    expect(h?.promised).toEqual({ memoryMb: 2048, vcpus: 2, diskMb: 10_240 });
    expect(h?.allocatedVcpus).toBe(3);
    expect(h?.groupMembers).toEqual({ db: 2 });
  });
});
