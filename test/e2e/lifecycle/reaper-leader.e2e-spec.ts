import { mkdtempSync, readFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig } from '@norm/core';
import { type SimulatedFleet, startSimulatedFleet } from '@norm/xen/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../../apps/api/src/api-app';
import { type AppProcess, startApp } from '../../harness/app-process';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { insertInstance } from '../../medium/inventory/builders';
import { aSimHostRow } from '../../medium/vm-requests/builders';

/** The reaper's cycle (NORM_REAPER_INTERVAL); a follower retries the lock as often. */
const CYCLE_MS = 2_000;
// Postgres noticing the dead session, process scheduling and the first cycle on a loaded machine.
const SLACK_MS = 5_000;

/**
 * Two real worker processes: exactly one runs reaper cycles (the `reaper` advisory lock), as
 * the workers' own logs, the published status and the audit all show; SIGKILL of that one (no
 * shutdown hook releases anything) hands the reaper to the other within one cycle.
 */
describe('the reaper across two worker processes', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let fleet: SimulatedFleet;
  let app: NestFastifyApplication;
  let admin: string;
  let silentId: string;
  const workers: AppProcess[] = [];

  beforeAll(async () => {
    fleet = await startSimulatedFleet({ count: 1, mode: 'inprocess', namePrefix: 'e2e-reap-' });
    const sim = fleet.hosts[0]!;
    const host = await aSimHostRow(db.dataSource, sim);
    // One cattle instance long silent, its domain absent from xl list: every leader decides on it.
    silentId = await insertInstance(db.dataSource, { hostId: host.id, domainName: 'e2e-reap-silent' });
    await db.dataSource.query(
      `UPDATE "instances" SET "heartbeat_deadline_at" = now() - interval '10 minutes' WHERE "id" = $1`,
      [silentId],
    );
    const stateDir = mkdtempSync(join(tmpdir(), 'norm-reap-e2e-'));
    app = await createApiApp({
      config: loadConfig({
        DATABASE_URL: db.url,
        REDIS_URL,
        NORM_REDIS_PREFIX: prefix,
        NORM_STATE_DIR: stateDir,
        NORM_LOG_LEVEL: 'silent',
      }),
    });
    await app.init();
    admin = await expectEventually(() => readFileSync(join(stateDir, 'admin-token'), 'utf8').trim());
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await app?.close();
    await fleet?.stop();
  });

  function worker(): AppProcess {
    const w = startApp('worker', {
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_SSH_KEY_PATH: fleet.clientKey.privateKeyPath,
      NORM_REAPER_INTERVAL: `${CYCLE_MS}ms`,
      // Reaper cycles are logged at debug.
      NORM_LOG_LEVEL: 'debug',
    });
    workers.push(w);
    return w;
  }

  const cycles = (w: AppProcess): number => w.lines.filter((l) => l.msg === 'reaper cycle').length;
  const leads = (w: AppProcess): boolean => w.lines.some((l) => l.msg === 'reaper leading');
  const idOf = (w: AppProcess): string => `${hostname()}:${w.child.pid}`;

  const status = async (): Promise<{ leaderId: string | null; lastCycle: { at: string } | null }> => {
    const res = await app.inject({
      method: 'GET',
      url: '/v1/lifecycle/status',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(res.statusCode).toBe(200);
    return res.json();
  };

  /** Decisions on the silent instance: a leader audits a held decision once, two would do it twice. */
  const holds = async (): Promise<number> =>
    (
      await db.dataSource.query<Array<{ n: number }>>(
        `SELECT count(*)::int AS n FROM "audit_events" WHERE "object_id" = $1 AND "action" LIKE 'lifecycle.reap.%'`,
        [silentId],
      )
    )[0]!.n;

  it('runs exactly one reaper; a SIGKILLed leader is replaced within one cycle', async () => {
    const a = worker();
    const b = worker();
    await Promise.all([a, b].map((w) => w.waitForLine((l) => l.msg === 'worker started')));
    await expectEventually(() => expect(leads(a) || leads(b)).toBe(true), { timeoutMs: 20_000 });
    const [leader, follower] = leads(a) ? [a, b] : [b, a];

    // Three cycles of the leader: the follower runs none, and the status names the leader.
    await expectEventually(() => expect(cycles(leader)).toBeGreaterThanOrEqual(3), {
      timeoutMs: 3 * CYCLE_MS + SLACK_MS,
    });
    expect(cycles(follower)).toBe(0);
    expect(leads(follower)).toBe(false);
    const seen = await status();
    expect(seen.leaderId).toBe(idOf(leader));
    // Held by the new leader's startup grace, and recorded once, not once per worker or cycle.
    expect(await holds()).toBe(1);

    const killedAt = Date.now();
    await leader.stop('SIGKILL');
    await follower.waitForLine((l) => l.msg === 'reaper leading', CYCLE_MS + SLACK_MS + 10_000);
    expect(Date.now() - killedAt).toBeLessThanOrEqual(CYCLE_MS + SLACK_MS);
    await expectEventually(async () => expect((await status()).leaderId).toBe(idOf(follower)), {
      timeoutMs: SLACK_MS,
    });
    const after = await status();
    expect(Date.parse(after.lastCycle!.at)).toBeGreaterThan(killedAt);
    // The new leader judges afresh (its own grace) and records its decision once.
    await expectEventually(async () => expect(await holds()).toBe(2));
    // Log lines leave in batches at least every 100 ms, so the cycle's line may trail its audit row.
    await expectEventually(() => expect(cycles(follower)).toBeGreaterThanOrEqual(1), { timeoutMs: 2_000 });
  }, 90_000);
});
