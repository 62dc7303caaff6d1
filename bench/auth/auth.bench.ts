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
import { type AuthSubject, grantsForRoles, loadConfig, type Principal } from '@norm/core';
import { createScratchDatabase, drive, interleave, median, startTimeBudget } from '../lib/bench-kit';
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

async function main(): Promise<void> {
  startTimeBudget(TIME_BUDGET_MS);
  const base = loadConfig(process.env);
  const db = await createScratchDatabase(base.databaseUrl, 'auth');
  const prefix = `norm-bench-auth-${process.pid}`;
  const child = fork(__filename, ['--serve'], {
    execArgv: ['-r', './scripts/register.js'],
    env: benchEnv(db.url, prefix, mkdtempSync(join(tmpdir(), 'norm-bench-auth-'))),
  });
  try {
    const ready = await new Promise<Ready>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Ready));
      child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
    });
    const path = `/v1/principals/${ready.principalId}`;
    const targets = { auth: `${ready.auth}${path}`, noAuth: `${ready.noAuth}${path}` };
    const headers = { authorization: `Bearer ${ready.token}` };
    const results = await interleave(['auth', 'noAuth'] as const, ROUNDS, (side) =>
      drive(targets[side], { connections: CONNECTIONS, seconds: SECONDS, headers }),
    );
    const rps = { auth: results.auth.map((r) => r.rps), noAuth: results.noAuth.map((r) => r.rps) };
    const p50 = { auth: results.auth.map((r) => r.p50), noAuth: results.noAuth.map((r) => r.p50) };
    const errors = [...results.auth, ...results.noAuth].reduce((n, r) => n + r.failures, 0);
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
    console.log(`non-2xx or failed requests: ${errors}`);
    console.log(`ratio auth/no-auth: ${ratio.toFixed(3)} (goal ≥ 0.85) ${ratio >= 0.85 ? 'OK' : 'MISSED'}`);
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      if (child.connected) child.disconnect();
      await exited;
    }
    await db.drop();
    const { Redis } = await import('ioredis');
    const redis = new Redis(base.redisUrl);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
}

if (process.argv.includes('--serve')) void serve();
else void main();
