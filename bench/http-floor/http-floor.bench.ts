/**
 * The HTTP floor: what our NestJS stack costs on top of bare Fastify, loopback only.
 *
 *   node -r ./scripts/register.js bench/http-floor/http-floor.bench.ts
 *
 * A child process serves two hello routes side by side, sharing one CPU budget:
 *   norm – GET /bench/hello?name=… inside the real api app (createApiApp): request logging
 *          (one JSON line per request, to /dev/null the way the product writes stdout, so the
 *          write syscalls are paid), the global guard, the zod validation pipe, the exception
 *          filter, Postgres and Redis connected;
 *   bare – the same route on a bare Fastify instance, no logging.
 * The server process runs on one CPU and autocannon on the other (pinServerAndLoad), so
 * neither takes the other's core; autocannon drives each side in turn, alternating which goes
 * first each round so drift (CPU frequency, GC, other load) hits both alike; the medians
 * over the rounds are compared.
 * Goal: norm / bare ≥ 0.60.
 */
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@norm/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { createLogDestination } from '@norm/platform';
import { createApiApp } from '../../apps/api/src/api-app';
import {
  createScratchDatabase,
  drive,
  interleave,
  median,
  pinServerAndLoad,
  startTimeBudget,
} from '../lib/bench-kit';
import { BenchHelloModule } from './hello.module';

const ROUNDS = 7;
const SECONDS = 3;
const CONNECTIONS = 10;
const GOAL = 0.6;
const TIME_BUDGET_MS = 150_000;
const PATH = '/bench/hello?name=norm';

interface Ready {
  norm: string;
  bare: string;
}

/** Child: both servers in one process, so they share one event loop and one CPU. */
async function serve(): Promise<void> {
  const config = loadConfig(process.env);
  const norm = await createApiApp({
    config,
    extraModules: [BenchHelloModule],
    logDestination: createLogDestination('/dev/null'),
  });
  await norm.listen(0, '127.0.0.1');

  // The very Fastify build Nest runs on (its adapter bundles its own copy), without Nest.
  const bare = new FastifyAdapter().getInstance();
  bare.get<{ Querystring: { name?: string } }>('/bench/hello', (request) => ({
    hello: request.query.name ?? 'world',
  }));
  await bare.listen({ port: 0, host: '127.0.0.1' });
  const address = bare.server.address();
  if (address === null || typeof address === 'string') throw new Error('bare server has no port');

  const ready: Ready = { norm: await norm.getUrl(), bare: `http://127.0.0.1:${address.port}` };
  const stop = (): void => {
    void Promise.all([norm.close(), bare.close()]).then(() => process.exit(0));
  };
  if (process.send) {
    process.send(ready);
    process.on('disconnect', stop);
  } else {
    // Run standalone (`… http-floor.bench.ts --serve`, e.g. under --cpu-prof) it prints the
    // URLs and stops on Ctrl-C, so a profile is written on exit.
    console.log(JSON.stringify(ready));
    process.on('SIGINT', stop);
  }
}

async function main(): Promise<void> {
  startTimeBudget(TIME_BUDGET_MS);
  // A migrated database of its own: the api's boot (bootstrap admin) reads its tables.
  const db = await createScratchDatabase(loadConfig(process.env).databaseUrl, 'http');
  const child = fork(__filename, ['--serve'], {
    execArgv: ['-r', './scripts/register.js'],
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      NORM_REDIS_PREFIX: `norm-bench-http-${process.pid}`,
      NORM_STATE_DIR: mkdtempSync(join(tmpdir(), 'norm-bench-http-')),
      NORM_LOG_LEVEL: 'info',
    },
  });
  try {
    const ready = await new Promise<Ready>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Ready));
      child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
    });
    const pinning = pinServerAndLoad(child.pid!);
    const targets = { norm: `${ready.norm}${PATH}`, bare: `${ready.bare}${PATH}` };
    const results = await interleave(['norm', 'bare'] as const, ROUNDS, (side) =>
      drive(targets[side], { connections: CONNECTIONS, seconds: SECONDS }),
    );
    const rps = { norm: results.norm.map((r) => r.rps), bare: results.bare.map((r) => r.rps) };
    const p50 = { norm: results.norm.map((r) => r.p50), bare: results.bare.map((r) => r.p50) };
    const failures = [...results.norm, ...results.bare].reduce((n, r) => n + r.failures, 0);
    const m = { norm: median(rps.norm), bare: median(rps.bare) };
    const ratio = m.norm / m.bare;
    // Each round's two runs are adjacent in time, so their ratio cancels slow drift in load.
    const pairedRatio = median(rps.norm.map((v, i) => v / rps.bare[i]!));
    const rounds = (values: number[]): string => values.map((v) => v.toFixed(0)).join(' ');
    console.log(
      `target: GET ${PATH}, ${CONNECTIONS} connections, ${ROUNDS}×${SECONDS}s interleaved, ${pinning}`,
    );
    console.log(
      `norm req/s median ${m.norm.toFixed(0)} (rounds ${rounds(rps.norm)}), p50 ${median(p50.norm)} ms`,
    );
    console.log(
      `bare req/s median ${m.bare.toFixed(0)} (rounds ${rounds(rps.bare)}), p50 ${median(p50.bare)} ms`,
    );
    console.log(`non-2xx or failed requests: ${failures}`);
    console.log(`median of per-round ratios: ${pairedRatio.toFixed(3)}`);
    console.log(`ratio norm/bare: ${ratio.toFixed(3)} (goal ≥ ${GOAL}) ${ratio >= GOAL ? 'OK' : 'MISSED'}`);
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
