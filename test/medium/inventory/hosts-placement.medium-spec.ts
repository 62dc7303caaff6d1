import { DEFAULT_PLACEMENT_OPTIONS, PlacementService } from '@norm/core';
import { HostRepository, PgInventoryUnitOfWork } from '@norm/inventory';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';
import { aHost, anObservation, insertInstance, insertVmRequest } from './builders';

const db = useTestDatabase();

describe('host repository', () => {
  it('counts consecutive failures, turns unreachable at the threshold and online on success', async () => {
    const repo = new HostRepository(db.dataSource.manager);
    const host = await repo.create(aHost(), anObservation(), new Date());
    expect(host.status).toBe('online');
    expect(await repo.recordSyncFailure(host.id, 'boom', new Date(), 3)).toEqual({
      status: 'online',
      consecutiveFailures: 1,
    });
    await repo.recordSyncFailure(host.id, 'boom', new Date(), 3);
    expect(await repo.recordSyncFailure(host.id, 'boom', new Date(), 3)).toEqual({
      status: 'unreachable',
      consecutiveFailures: 3,
    });
    const domains = [
      { name: 'vm1', domid: 3, memoryMb: 512, vcpus: 1, state: 'r-----', macs: [], dying: false },
    ];
    await repo.recordSyncSuccesses([
      { hostId: host.id, observation: anObservation({ freeMemoryMb: 1000, domains }), at: new Date() },
    ]);
    const after = await repo.get(host.id);
    expect(after).toMatchObject({
      status: 'online',
      consecutiveSyncFailures: 0,
      lastSyncError: null,
      freeMemoryMb: 1000,
      observedDomains: domains,
      storageFreeMb: 500_000,
    });
  });

  it('refuses a duplicate name with Conflict', async () => {
    const repo = new HostRepository(db.dataSource.manager);
    await repo.create(aHost({ name: 'dup' }), anObservation(), new Date());
    await expect(repo.create(aHost({ name: 'dup' }), anObservation(), new Date())).rejects.toMatchObject({
      code: 'Conflict',
    });
  });
});

/** The race itself goes through VmRequestService: test/medium/inventory-sim/placement-sim.medium-spec.ts. */
describe('placement with promised capacity', () => {
  it('stops counting a promise once the sync sees its domain', async () => {
    // Only this test's host may offer room.
    await db.dataSource.query(`DELETE FROM "hosts"`);
    const repo = new HostRepository(db.dataSource.manager);
    const h = await repo.create(aHost({ name: 'seen' }), anObservation({ freeMemoryMb: 9000 }), new Date());
    const service = new PlacementService(new PgInventoryUnitOfWork(db.dataSource), {
      ...DEFAULT_PLACEMENT_OPTIONS,
      antiAffinityMode: 'hard',
    });
    const req = await insertVmRequest(db.dataSource, { memoryMb: 4096, state: 'provisioning', hostId: h.id });
    await insertInstance(db.dataSource, {
      hostId: h.id,
      domainName: 'norm-seen-1',
      state: 'provisioning',
      requestId: req,
    });
    const before = await service.preview({ memoryMb: 4096, vcpus: 1, diskGb: 10 });
    expect(before.chosen).toBeNull();
    const domains = [
      { name: 'norm-seen-1', domid: 9, memoryMb: 4096, vcpus: 1, state: 'r-----', macs: [], dying: false },
    ];
    await repo.recordSyncSuccesses([
      { hostId: h.id, observation: anObservation({ freeMemoryMb: 9000, domains }), at: new Date() },
    ]);
    const after = await service.preview({ memoryMb: 4096, vcpus: 1, diskGb: 10 });
    expect(after.chosen?.hostName).toBe('seen');
  });
});

describe('placement candidates (one read, summed in Postgres)', () => {
  it('promises only in-flight requests whose domain is not seen yet, and counts the group from both sources', async () => {
    await db.dataSource.query(`DELETE FROM "instances"`);
    await db.dataSource.query(`DELETE FROM "vm_requests"`);
    await db.dataSource.query(`DELETE FROM "hosts"`);
    const repo = new HostRepository(db.dataSource.manager);
    const seen = [
      { name: 'norm-seen', domid: 1, memoryMb: 1024, vcpus: 3, state: 'r-----', macs: [], dying: false },
      { name: 'stranger', domid: 2, memoryMb: 512, vcpus: 2, state: 'b-----', macs: [], dying: false },
    ];
    const h = await repo.create(aHost({ name: 'a-host' }), anObservation({ domains: seen }), new Date());
    const other = await repo.create(aHost({ name: 'b-host' }), anObservation(), new Date());
    const ds = db.dataSource;
    // Promised on h: in flight, domain not seen (an instance row or not).
    await insertVmRequest(ds, { memoryMb: 2048, vcpus: 2, diskGb: 10, hostId: h.id, group: 'db' });
    const fresh = await insertVmRequest(ds, {
      memoryMb: 256,
      vcpus: 1,
      diskGb: 1,
      state: 'provisioning',
      hostId: h.id,
    });
    await insertInstance(ds, {
      hostId: h.id,
      domainName: 'norm-fresh',
      state: 'provisioning',
      requestId: fresh,
    });
    // In flight but its domain is seen: in free memory already, still a group member.
    const seenReq = await insertVmRequest(ds, {
      memoryMb: 1024,
      vcpus: 3,
      diskGb: 5,
      state: 'provisioning',
      hostId: h.id,
      group: 'db',
    });
    await insertInstance(ds, {
      hostId: h.id,
      domainName: 'norm-seen',
      state: 'provisioning',
      requestId: seenReq,
    });
    // Not promised: not in flight, or on the other host, or not placed.
    await insertVmRequest(ds, { memoryMb: 9999, state: 'pending_approval', hostId: null, group: 'db' });
    await insertVmRequest(ds, { memoryMb: 9999, state: 'failed', hostId: h.id, group: 'db' });
    await insertVmRequest(ds, { memoryMb: 7777, vcpus: 7, diskGb: 7, hostId: other.id, group: 'db' });
    // Live members of the group on h (running, stopped), and ones that do not count.
    await insertInstance(ds, { hostId: h.id, domainName: 'norm-live', group: 'db' });
    await insertInstance(ds, { hostId: h.id, domainName: 'norm-stopped', state: 'stopped', group: 'db' });
    await insertInstance(ds, { hostId: h.id, domainName: 'norm-gone', state: 'decommissioned', group: 'db' });
    await insertInstance(ds, { hostId: h.id, domainName: 'norm-web', group: 'web' });

    const [a, b] = await new PgInventoryUnitOfWork(ds).run((tx) => tx.placement.candidates('db'));
    expect(a).toMatchObject({
      id: h.id,
      name: 'a-host',
      status: 'online',
      freeMemoryMb: 16_384,
      nrCpus: 16,
      storageFreeMb: 500_000,
      allocatedVcpus: 5,
      promised: { memoryMb: 2048 + 256, vcpus: 3, diskMb: 11 * 1024 },
      groupMembers: { db: 2 + 2 },
    });
    expect(b).toMatchObject({
      id: other.id,
      promised: { memoryMb: 7777, vcpus: 7, diskMb: 7 * 1024 },
      groupMembers: { db: 1 },
    });
    const [noGroup] = await new PgInventoryUnitOfWork(ds).run((tx) => tx.placement.candidates(null));
    expect(noGroup).toMatchObject({ promised: { memoryMb: 2048 + 256 }, groupMembers: {} });
  });
});
