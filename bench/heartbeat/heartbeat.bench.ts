/**
 * Heartbeat ingest and the reaper's cycle, loopback only, bounded in time.
 *
 *   node -r ./scripts/register.js bench/heartbeat/heartbeat.bench.ts
 *
 * 1. A child process serves, side by side on one CPU budget:
 *    norm – POST /v1/instances/:id/heartbeat in the real api app (guard with the cached token
 *           check and Redis rate-limit script, zod body, the batching buffer, request logging to
 *           /dev/null);
 *    bare – a POST route on bare Fastify that parses the same JSON body.
 *    autocannon drives each in turn (interleaved rounds); goal norm/bare ≥ 0.5 and ≥ 5,000/s.
 * 2. 100,000 running cattle, 1 % overdue, no host answering: the reaper's cycle time (read
 *    candidates, fleet and host counts, decide, audit only what changed). Goal < 100 ms. The
 *    same with 10,000 cattle and the same overdue count, and with 100,000 and twice as many
 *    overdue, show what the cycle grows with: the overdue count, not the fleet.
 */
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import {
  DEFAULT_REAPER_OPTIONS,
  grantsForRoles,
  IdentityService,
  loadConfig,
  Reaper,
  silentLogger,
  systemClock,
  type XenHostFactory,
} from '@norm/core';
import { PgAuditLog, PgReaperStore } from '@norm/inventory';
import { DataSource } from 'typeorm';
import { createLogDestination } from '@norm/platform';
import { createApiApp } from '../../apps/api/src/api-app';
import { createScratchDatabase, drive, interleave, median, startTimeBudget } from '../lib/bench-kit';

const ROUNDS = 5;
const SECONDS = 3;
const CONNECTIONS = 10;
const GOAL_RATIO = 0.5;
const GOAL_RPS = 5000;
const TIME_BUDGET_MS = 300_000;
const BODY = JSON.stringify({ seq: 1, uptime_s: 10 });

interface Ready {
  norm: string;
  bare: string;
  token: string;
  instanceId: string;
}

/**
 * The fleet is inserted in batches of 1,000, one statement each, as a fleet grows: one
 * statement inserting 100,000 running instances would update the same
 * `running_instance_counts` row 100,000 times in one transaction, and each update walks the
 * row's ever longer chain of versions (quadratic; minutes instead of seconds).
 */
async function insertFleet(ds: DataSource, total: number, overdue: number): Promise<string> {
  const BATCH = 1000;
  for (let from = 1; from <= total; from += BATCH) {
    await ds.query(
      `WITH "r" AS (
         INSERT INTO "vm_requests" ("id", "name", "owner_id", "vcpus", "memory_mb", "disk_gb", "lifecycle_class", "state")
         SELECT gen_random_uuid(), 'b-' || g, '00000000-0000-4000-8000-000000000001', 1, 512, 1, 'cattle', 'running'
           FROM generate_series($2::int, $3::int) g
         RETURNING "id", "name", "owner_id"
       )
       INSERT INTO "instances" ("vm_request_id", "name", "owner_id", "domain_name", "lifecycle_class", "state",
         "last_heartbeat_at", "heartbeat_deadline_at")
       SELECT r."id", r."name", r."owner_id", r."name", 'cattle', 'running', o."last", o."last" + interval '3 minutes'
         FROM "r",
              LATERAL (SELECT CASE WHEN substr(r."name", 3)::int <= $1 THEN now() - interval '13 minutes'
                                   ELSE now() END AS "last") o`,
      [overdue, from, Math.min(total, from + BATCH - 1)],
    );
  }
  await ds.query(`VACUUM ANALYZE "instances", "running_instance_counts"`);
  const [row] = await ds.query<Array<{ id: string }>>(
    `SELECT "id" FROM "instances" WHERE "heartbeat_deadline_at" > now() LIMIT 1`,
  );
  return row!.id;
}

async function serve(): Promise<void> {
  const config = loadConfig(process.env);
  const norm = await createApiApp({
    config,
    logDestination: createLogDestination('/dev/null'),
  });
  await norm.listen(0, '127.0.0.1');
  const ds = norm.get(DataSource);
  const instanceId = await insertFleet(ds, 1000, 0);
  const { token } = await norm.get(IdentityService).createInstanceToken(
    {
      subject: {
        kind: 'principal',
        principal: {
          id: 'bench',
          kind: 'service',
          name: 'bench',
          roles: ['operator'],
          groups: [],
          createdAt: new Date(0),
        },
        tokenId: 'bench',
        grants: grantsForRoles(['operator']),
      },
      requestId: null,
    },
    instanceId,
  );
  const bare = new FastifyAdapter().getInstance();
  bare.post<{ Params: { id: string }; Body: { seq?: number } }>(
    '/v1/instances/:id/heartbeat',
    (request, reply) => {
      void reply.code(202);
      return { accepted: request.body.seq !== undefined || true };
    },
  );
  await bare.listen({ port: 0, host: '127.0.0.1' });
  const address = bare.server.address();
  if (address === null || typeof address === 'string') throw new Error('bare server has no port');
  const ready: Ready = {
    norm: await norm.getUrl(),
    bare: `http://127.0.0.1:${address.port}`,
    token,
    instanceId,
  };
  process.send?.(ready);
  process.on('disconnect', () => {
    void Promise.all([norm.close(), bare.close()]).then(() => process.exit(0));
  });
}

/** Fleets the reaper's cycle is timed over: the total grows 10×, then the overdue count 2×. */
const FLEETS: ReadonlyArray<{ total: number; overdue: number }> = [
  { total: 10_000, overdue: 1_000 },
  { total: 100_000, overdue: 1_000 },
  { total: 100_000, overdue: 2_000 },
];

interface CycleTimes {
  total: number;
  overdue: number;
  firstMs: number;
  medianMs: number;
  cycles: number[];
}

/** One fleet: insert it, let a first cycle audit its new alerts, then time 7 steady cycles. */
async function timeCycles(ds: DataSource, total: number, overdue: number): Promise<CycleTimes> {
  await ds.query(`DELETE FROM "api_tokens" WHERE "kind" = 'instance'`).catch(() => undefined);
  await ds.query(`DELETE FROM "instances"`);
  await ds.query(`DELETE FROM "vm_requests"`);
  await insertFleet(ds, total, overdue);
  const noXen: XenHostFactory = {
    forHost: () => {
      throw new Error('no hosts in this bench');
    },
    readFingerprint: () => Promise.reject(new Error('no hosts')),
    close: () => Promise.resolve(),
  };
  const reaper = new Reaper(
    {
      store: new PgReaperStore(ds, { cattleS: 180, petS: 180 }),
      actions: {
        quarantine: () => Promise.resolve('acted'),
        revive: () => Promise.resolve('acted'),
        decommission: () => Promise.resolve('acted'),
      },
      xen: noXen,
      clock: systemClock,
      log: silentLogger,
      audit: (e) => PgAuditLog.appendAlone(ds, e),
    },
    { ...DEFAULT_REAPER_OPTIONS, maxCandidates: 5_000 },
  );
  const first = await reaper.runCycle();
  const cycles: number[] = [];
  for (let i = 0; i < 7; i++) cycles.push((await reaper.runCycle()).durationMs);
  return { total, overdue, firstMs: first.durationMs, medianMs: median(cycles), cycles };
}

/**
 * The reaper's cycle over 100,000 running cattle with 1 % overdue (goal < 100 ms), and how it
 * scales: against 10× fewer instances with the same overdue count it should stay about the
 * same, and against twice the overdue count it may grow.
 */
async function reaperCycle(databaseUrl: string): Promise<void> {
  const ds = new DataSource({ type: 'postgres', url: databaseUrl });
  await ds.initialize();
  try {
    const runs: CycleTimes[] = [];
    for (const f of FLEETS) runs.push(await timeCycles(ds, f.total, f.overdue));
    const n = (v: number): string => v.toLocaleString('en-US');
    for (const r of runs) {
      console.log(
        `reaper: ${n(r.total)} cattle, ${n(r.overdue)} overdue: median ${r.medianMs} ms ` +
          `(cycles ${r.cycles.join(' ')}; first cycle ${r.firstMs} ms, auditing ${n(r.overdue)} new alerts)`,
      );
    }
    const [small, big, moreOverdue] = runs as [CycleTimes, CycleTimes, CycleTimes];
    const byTotal = big.medianMs / Math.max(1, small.medianMs);
    const byOverdue = moreOverdue.medianMs / Math.max(1, big.medianMs);
    console.log(
      `reaper at 100,000 / 1 %: ${big.medianMs} ms (goal < 100 ms) ${big.medianMs < 100 ? 'OK' : 'MISSED'}`,
    );
    console.log(
      `reaper scaling: ×10 instances, same overdue → ×${byTotal.toFixed(2)}; ` +
        `×2 overdue, same instances → ×${byOverdue.toFixed(2)} ` +
        `(goal: follows the overdue count, not the total, i.e. ×10 instances ≤ ×1.5) ${byTotal <= 1.5 ? 'OK' : 'MISSED'}`,
    );
  } finally {
    await ds.destroy();
  }
}

async function main(): Promise<void> {
  startTimeBudget(TIME_BUDGET_MS);
  const db = await createScratchDatabase(loadConfig(process.env).databaseUrl, 'heartbeat');
  const child = fork(__filename, ['--serve'], {
    execArgv: ['-r', './scripts/register.js'],
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      NORM_REDIS_PREFIX: `norm-bench-hb-${process.pid}`,
      NORM_STATE_DIR: mkdtempSync(join(tmpdir(), 'norm-bench-hb-')),
      NORM_LOG_LEVEL: 'info',
      // The bench measures ingest, not the refusals.
      NORM_RATE_LIMIT_PER_TOKEN: '1000000000',
      NORM_RATE_LIMIT_PER_IP: '1000000000',
    },
  });
  try {
    const ready = await new Promise<Ready>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Ready));
      child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
    });
    const path = `/v1/instances/${ready.instanceId}/heartbeat`;
    const headers = {
      authorization: `Bearer ${ready.token}`,
      'content-type': 'application/json',
      'user-agent': 'norm-heartbeat/1',
    };
    const results = await interleave(['norm', 'bare'] as const, ROUNDS, (side) =>
      drive(`${ready[side]}${path}`, {
        connections: CONNECTIONS,
        seconds: SECONDS,
        headers,
        method: 'POST',
        body: BODY,
      }),
    );
    const rps = { norm: results.norm.map((r) => r.rps), bare: results.bare.map((r) => r.rps) };
    const failures = [...results.norm, ...results.bare].reduce((n, r) => n + r.failures, 0);
    const m = { norm: median(rps.norm), bare: median(rps.bare) };
    const ratio = m.norm / m.bare;
    const rounds = (v: number[]): string => v.map((x) => x.toFixed(0)).join(' ');
    console.log(`target: POST ${path}, ${CONNECTIONS} connections, ${ROUNDS}×${SECONDS}s interleaved`);
    console.log(`norm heartbeats/s median ${m.norm.toFixed(0)} (rounds ${rounds(rps.norm)})`);
    console.log(`bare fastify     median ${m.bare.toFixed(0)} (rounds ${rounds(rps.bare)})`);
    console.log(`non-2xx or failed requests: ${failures}`);
    console.log(
      `ratio norm/bare: ${ratio.toFixed(3)} (goal ≥ ${GOAL_RATIO}) ${ratio >= GOAL_RATIO ? 'OK' : 'MISSED'}; ` +
        `${m.norm.toFixed(0)}/s (goal ≥ ${GOAL_RPS}) ${m.norm >= GOAL_RPS ? 'OK' : 'MISSED'}`,
    );
    if (child.connected) child.disconnect();
    await new Promise((r) => child.once('exit', r));
    await reaperCycle(db.url);
    if (failures > 0) process.exitCode = 1;
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      if (child.connected) child.disconnect();
      await exited;
    }
    await db.drop();
  }
}

if (process.argv.includes('--serve')) void serve();
else void main();
