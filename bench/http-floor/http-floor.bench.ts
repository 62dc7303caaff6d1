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
 * autocannon drives each in turn, alternating which goes first each round so drift (CPU
 * frequency, GC, other load) hits both alike; the medians over the rounds are compared.
 * Goal: norm / bare ≥ 0.60.
 */
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { loadConfig } from '@norm/core';
import { dataSourceOptions } from '@norm/inventory';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Client } from 'pg';
import { pino } from 'pino';
import { DataSource } from 'typeorm';
import { createApiApp } from '../../apps/api/src/api-app';
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
    logDestination: pino.destination({ dest: '/dev/null', sync: false }),
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

async function drive(url: string): Promise<{ rps: number; p50: number; non2xx: number; errors: number }> {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    non2xx: result.non2xx,
    errors: result.errors,
  };
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

  // A migrated database of its own: the api's boot (bootstrap admin) reads its tables.
  const base = loadConfig(process.env);
  const dbName = `norm_bench_http_${Date.now().toString(36)}`;
  const adminUrl = new URL(base.databaseUrl);
  adminUrl.pathname = '/postgres';
  const admin = new Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  const dbUrl = new URL(base.databaseUrl);
  dbUrl.pathname = `/${dbName}`;

  const child = fork(__filename, ['--serve'], {
    execArgv: ['-r', './scripts/register.js'],
    env: {
      ...process.env,
      DATABASE_URL: dbUrl.toString(),
      NORM_REDIS_PREFIX: `norm-bench-http-${process.pid}`,
      NORM_STATE_DIR: mkdtempSync(join(tmpdir(), 'norm-bench-http-')),
      NORM_LOG_LEVEL: 'info',
    },
  });
  try {
    const migrate = new DataSource(dataSourceOptions(dbUrl.toString()));
    await migrate.initialize();
    await migrate.runMigrations({ transaction: 'each' });
    await migrate.destroy();

    const ready = await new Promise<Ready>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Ready));
      child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
    });
    const targets = { norm: `${ready.norm}${PATH}`, bare: `${ready.bare}${PATH}` };
    // Warm-up: JIT and connection setup, not measured.
    await drive(targets.norm);
    await drive(targets.bare);

    const rps = { norm: [] as number[], bare: [] as number[] };
    const p50 = { norm: [] as number[], bare: [] as number[] };
    let failures = 0;
    for (let i = 0; i < ROUNDS; i += 1) {
      const order = i % 2 === 0 ? (['norm', 'bare'] as const) : (['bare', 'norm'] as const);
      for (const kind of order) {
        const r = await drive(targets[kind]);
        rps[kind].push(r.rps);
        p50[kind].push(r.p50);
        failures += r.non2xx + r.errors;
      }
    }
    const m = { norm: median(rps.norm), bare: median(rps.bare) };
    const ratio = m.norm / m.bare;
    // Each round's two runs are adjacent in time, so their ratio cancels slow drift in load.
    const pairedRatio = median(rps.norm.map((v, i) => v / rps.bare[i]!));
    const rounds = (values: number[]): string => values.map((v) => v.toFixed(0)).join(' ');
    console.log(`target: GET ${PATH}, ${CONNECTIONS} connections, ${ROUNDS}×${SECONDS}s interleaved`);
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
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.end();
  }
}

if (process.argv.includes('--serve')) void serve();
else void main();
