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
