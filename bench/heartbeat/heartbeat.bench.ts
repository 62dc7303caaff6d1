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
 *    candidates, fleet and host counts, decide, audit only what changed). Goal < 100 ms.
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
const TIME_BUDGET_MS = 180_000;
const BODY = JSON.stringify({ seq: 1, uptime_s: 10 });

interface Ready {
  norm: string;
  bare: string;
  token: string;
  instanceId: string;
}

async function insertFleet(ds: DataSource, total: number, overdue: number): Promise<string> {
  await ds.query(
    `INSERT INTO "vm_requests" ("id", "name", "owner_id", "vcpus", "memory_mb", "disk_gb", "lifecycle_class", "state")
     SELECT gen_random_uuid(), 'b-' || g, '00000000-0000-4000-8000-000000000001', 1, 512, 1, 'cattle', 'running'
       FROM generate_series(1, $1) g`,
    [total],
  );
  await ds.query(
    `INSERT INTO "instances" ("vm_request_id", "name", "owner_id", "domain_name", "lifecycle_class", "state",
       "last_heartbeat_at", "heartbeat_deadline_at")
     SELECT r."id", r."name", r."owner_id", r."name", 'cattle', 'running', now(),
            CASE WHEN row_number() OVER () <= $1 THEN now() - interval '10 minutes' ELSE now() + interval '3 minutes' END
       FROM "vm_requests" r`,
    [overdue],
  );
  await ds.query(`ANALYZE "instances"`);
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

async function reaperCycle(databaseUrl: string): Promise<void> {
  const ds = new DataSource({ type: 'postgres', url: databaseUrl });
  await ds.initialize();
  try {
    await ds.query(`DELETE FROM "instances"`);
    await ds.query(`DELETE FROM "api_tokens" WHERE "kind" = 'instance'`).catch(() => undefined);
    await ds.query(`DELETE FROM "vm_requests"`);
    await insertFleet(ds, 100_000, 1000);
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
      { ...DEFAULT_REAPER_OPTIONS, maxCandidates: 2000 },
    );
    const first = await reaper.runCycle();
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push((await reaper.runCycle()).durationMs);
    console.log(
      `reaper: 100,000 cattle, 1,000 overdue: first cycle ${first.durationMs} ms (audits ${first.candidates} new alerts), ` +
        `then median ${median(times)} ms (cycles ${times.join(' ')}) (goal < 100 ms) ${median(times) < 100 ? 'OK' : 'MISSED'}`,
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
