/**
 * Cost of authentication on a small authenticated read, loopback only, bounded in time.
 *
 *   node -r ./scripts/register.js bench/auth/auth.bench.ts
 *
 * Two copies of the identity routes run in a child process on one Postgres and one Redis:
 *   auth    – the real guard: one Redis script call (rate limits + revocation epoch), the
 *             in-process token cache, the permission check;
 *   no-auth – the same app with the guard replaced by a fixed subject.
 * autocannon drives `GET /v1/principals/:id` against each in turn, alternating which goes
 * first each round so drift (CPU frequency, GC, other load) hits both alike, and reports the
 * median requests/s over the rounds. Goal: auth / no-auth ≥ 0.85.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { type AuthSubject, grantsForRoles, loadConfig, type Principal } from '@norm/core';
import { dataSourceOptions } from '@norm/inventory';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { startBenchApp } from './bench-app';

const ROUNDS = 7;
const SECONDS = 3;
const CONNECTIONS = 10;
const TIME_BUDGET_MS = 120_000;

interface Ready {
  auth: string;
  noAuth: string;
  token: string;
  principalId: string;
}

function benchEnv(databaseUrl: string, prefix: string, stateDir: string): Record<string, string | undefined> {
  return {
    ...process.env,
    DATABASE_URL: databaseUrl,
    NORM_REDIS_PREFIX: prefix,
    NORM_STATE_DIR: stateDir,
    // The bench measures the checks, not the refusals.
    NORM_RATE_LIMIT_PER_TOKEN: '1000000000',
    NORM_RATE_LIMIT_PER_IP: '1000000000',
  };
}

/** Child: both apps in one process, so they share one CPU budget and one event loop. */
async function serve(): Promise<void> {
  const config = loadConfig(process.env);
  const auth = await startBenchApp(config, { enabled: true });
  const token = readFileSync(join(config.stateDir, 'admin-token'), 'utf8').trim();
  const res = await fetch(`${auth.url}/v1/tokens/self`, { headers: { authorization: `Bearer ${token}` } });
  const self = (await res.json()) as { principal: Principal & { createdAt: string }; token: { id: string } };
  // The subject the real guard would have produced for this token.
  const subject: AuthSubject = {
    kind: 'principal',
    principal: { ...self.principal, createdAt: new Date(self.principal.createdAt) },
    tokenId: self.token.id,
    grants: grantsForRoles(self.principal.roles),
  };
  const noAuth = await startBenchApp(config, { enabled: false, subject });
  const ready: Ready = { auth: auth.url, noAuth: noAuth.url, token, principalId: self.principal.id };
  process.send?.(ready);
  process.on('disconnect', () => {
    void Promise.all([auth.close(), noAuth.close()]).then(() => process.exit(0));
  });
}

async function drive(url: string, token: string): Promise<{ rps: number; p50: number; non2xx: number }> {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: SECONDS,
    headers: { authorization: `Bearer ${token}` },
  });
  return { rps: result.requests.average, p50: result.latency.p50, non2xx: result.non2xx };
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const hardStop = setTimeout(() => {
    console.error(`bench exceeded ${TIME_BUDGET_MS} ms; aborting`);
    process.exit(2);
  }, TIME_BUDGET_MS);
  hardStop.unref();

  const base = loadConfig(process.env);
  const dbName = `norm_bench_auth_${Date.now().toString(36)}`;
  const adminUrl = new URL(base.databaseUrl);
  adminUrl.pathname = '/postgres';
  const admin = new Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  const dbUrl = new URL(base.databaseUrl);
  dbUrl.pathname = `/${dbName}`;
  const migrate = new DataSource(dataSourceOptions(dbUrl.toString()));
  await migrate.initialize();
  await migrate.runMigrations({ transaction: 'each' });
  await migrate.destroy();

  const prefix = `norm-bench-auth-${process.pid}`;
  const child = fork(__filename, ['--serve'], {
    execArgv: ['-r', './scripts/register.js'],
    env: benchEnv(dbUrl.toString(), prefix, mkdtempSync(join(tmpdir(), 'norm-bench-auth-'))),
  });
  try {
    const ready = await new Promise<Ready>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Ready));
      child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
    });
    const path = `/v1/principals/${ready.principalId}`;
    const targets = { auth: `${ready.auth}${path}`, noAuth: `${ready.noAuth}${path}` };
    // Warm-up: JIT, connection pools, the token cache.
    await drive(targets.auth, ready.token);
    await drive(targets.noAuth, ready.token);

    const rps = { auth: [] as number[], noAuth: [] as number[] };
    const p50 = { auth: [] as number[], noAuth: [] as number[] };
    let errors = 0;
    for (let i = 0; i < ROUNDS; i += 1) {
      const order = i % 2 === 0 ? (['auth', 'noAuth'] as const) : (['noAuth', 'auth'] as const);
      for (const kind of order) {
        const r = await drive(targets[kind], ready.token);
        rps[kind].push(r.rps);
        p50[kind].push(r.p50);
        errors += r.non2xx;
      }
    }
    const m = { auth: median(rps.auth), noAuth: median(rps.noAuth) };
    const ratio = m.auth / m.noAuth;
    console.log(
      `target: GET ${path} (small principal), ${CONNECTIONS} connections, ${ROUNDS}×${SECONDS}s interleaved`,
    );
    console.log(
      `auth    req/s median ${m.auth.toFixed(0)} (rounds ${rps.auth.map((v) => v.toFixed(0)).join(' ')}), p50 ${median(p50.auth)} ms`,
    );
    console.log(
      `no-auth req/s median ${m.noAuth.toFixed(0)} (rounds ${rps.noAuth.map((v) => v.toFixed(0)).join(' ')}), p50 ${median(p50.noAuth)} ms`,
    );
    console.log(`non-2xx responses: ${errors}`);
    console.log(`ratio auth/no-auth: ${ratio.toFixed(3)} (goal ≥ 0.85) ${ratio >= 0.85 ? 'OK' : 'MISSED'}`);
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      if (child.connected) child.disconnect();
      await exited;
    }
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.end();
    const { Redis } = await import('ioredis');
    const redis = new Redis(base.redisUrl);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
}

if (process.argv.includes('--serve')) void serve();
else void main();
