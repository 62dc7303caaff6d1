import { HostRepository } from '@norm/inventory';
import { type SimulatedFleet, startSimulatedFleet } from '@norm/xen/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, startApp } from '../../harness/app-process';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';

/**
 * Two real worker processes against simulated hosts: exactly one runs the host sync (the
 * Postgres advisory lock), and when that one is killed outright (SIGKILL: no shutdown hook
 * releases anything, only Postgres noticing the dead session does) the other has finished its
 * first pass within one sync interval of the kill: the standby tries the lock five times an
 * interval, so at most a fifth of it passes before it leads, and the rest covers its SSH
 * handshakes and the pass itself.
 */
const INTERVAL_MS = 2_000;

describe('host sync across two worker processes', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let fleet: SimulatedFleet;
  const workers: AppProcess[] = [];

  beforeAll(async () => {
    fleet = await startSimulatedFleet({ count: 2, mode: 'inprocess', namePrefix: 'e2e-sync-' });
    const repo = new HostRepository(db.dataSource.manager);
    for (const h of fleet.hosts) {
      await repo.create(
        {
          name: h.name,
          address: h.address,
          port: h.port,
          sshUser: h.user,
          sudo: false,
          hostKeyFingerprint: h.fingerprint,
          labels: {},
          limits: {},
        },
        {
          totalMemoryMb: 0,
          freeMemoryMb: 0,
          nrCpus: 0,
          xenVersion: 'unknown',
          storageTotalMb: 0,
          storageFreeMb: 0,
          volumeGroups: [],
          domains: [],
        },
        new Date(0),
      );
    }
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await fleet.stop();
  });

  function worker(): AppProcess {
    const w = startApp('worker', {
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_SSH_KEY_PATH: fleet.clientKey.privateKeyPath,
      NORM_HOST_SYNC_INTERVAL: `${INTERVAL_MS}ms`,
      // Sync passes are logged at debug.
      NORM_LOG_LEVEL: 'debug',
    });
    workers.push(w);
    return w;
  }

  const passes = (w: AppProcess): number => w.lines.filter((l) => l.msg === 'host sync pass').length;
  const leads = (w: AppProcess): boolean => w.lines.some((l) => l.msg === 'host sync leading');

  async function lastSync(): Promise<number> {
    const rows: Array<{ at: Date | null }> = await db.dataSource.query(
      `SELECT min("last_sync_at") AS "at" FROM "hosts"`,
    );
    return rows[0]?.at?.getTime() ?? 0;
  }

  it('runs exactly one sync loop, and a SIGKILLed leader is replaced within one interval', async () => {
    const a = worker();
    const b = worker();
    await Promise.all([a, b].map((w) => w.waitForLine((l) => l.msg === 'worker started')));
    await expectEventually(() => expect(leads(a) || leads(b)).toBe(true));
    const [leader, follower] = leads(a) ? [a, b] : [b, a];

    // Several intervals: the leader syncs every host each time, the follower never.
    await expectEventually(() => expect(passes(leader)).toBeGreaterThanOrEqual(3), { timeoutMs: 15_000 });
    expect(passes(follower)).toBe(0);
    expect(leads(follower)).toBe(false);
    expect(await lastSync()).toBeGreaterThan(Date.now() - 3 * INTERVAL_MS);
    expect(fleet.hosts.every((h) => h.sim.commands(['xl', 'info']).length >= 3)).toBe(true);

    const killedAt = Date.now();
    await leader.stop('SIGKILL');
    // Waited for longer than it may take, so a slow hand-over fails on the figure, not a timeout.
    await follower.waitForLine((l) => l.msg === 'host sync pass', 3 * INTERVAL_MS);
    const handover = Date.now() - killedAt;
    expect(handover).toBeLessThanOrEqual(INTERVAL_MS);
    expect(leads(follower)).toBe(true);
    // And the inventory keeps moving: the hosts' last sync is newer than the kill.
    await expectEventually(async () => expect(await lastSync()).toBeGreaterThan(killedAt));
  });
});
