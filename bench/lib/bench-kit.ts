/**
 * What every benchmark here needs, written once: a hard time budget, a scratch migrated
 * database, an autocannon run, interleaved rounds and medians. Benchmarks print ratios
 * measured side by side in one run; interleaving makes drift (CPU frequency, GC, other
 * load on this shared 2-core machine) hit both sides alike.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import autocannon from 'autocannon';
import { dataSourceOptions } from '@norm/inventory';
import { Client } from 'pg';
import { DataSource } from 'typeorm';

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Ends the process if the benchmark overruns: a bench must stop by itself. */
export function startTimeBudget(ms: number): void {
  setTimeout(() => {
    console.error(`bench exceeded ${ms} ms; aborting`);
    process.exit(2);
  }, ms).unref();
}

/**
 * Puts the server process (every thread of it) on the last CPU and this process, the load
 * generator, on the first, for the rest of the run. Unpinned, the two wander over the same
 * two cores and a round's throughput swung by 2x (10k to 23k req/s for the same route in one
 * run); pinned, rounds agree within a few per cent. Both sides of a comparison are served
 * by the same pinned process, so the pinning treats them alike. Returns what it did, for the
 * report; on a single-CPU machine it does nothing.
 */
export function pinServerAndLoad(serverPid: number): string {
  const cpus = availableParallelism();
  if (cpus < 2) return 'not pinned (one CPU)';
  const last = String(cpus - 1);
  execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', last, String(serverPid)], {
    stdio: 'ignore',
  });
  execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', '0', String(process.pid)], {
    stdio: 'ignore',
  });
  return `server pinned to CPU ${last}, load generator to CPU 0`;
}

export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh database on the configured server, migrated when asked; drop() removes it. */
export async function createScratchDatabase(
  baseUrl: string,
  label: string,
  options: { migrate: boolean } = { migrate: true },
): Promise<ScratchDatabase> {
  const name = `norm_bench_${label}_${Date.now().toString(36)}`;
  const adminUrl = new URL(baseUrl);
  adminUrl.pathname = '/postgres';
  const admin = new Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  if (options.migrate) {
    const ds = new DataSource(dataSourceOptions(url.toString()));
    await ds.initialize();
    await ds.runMigrations({ transaction: 'each' });
    await ds.destroy();
  }
  return {
    url: url.toString(),
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    },
  };
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  failures: number;
}

export async function drive(
  url: string,
  options: {
    connections: number;
    seconds: number;
    headers?: Record<string, string>;
    method?: 'GET' | 'POST';
    body?: string;
    /** Called before every request: for paths, bodies or headers that must differ each time (ids, unique names, keys). */
    perRequest?: () => { path?: string; body?: string; headers?: Record<string, string> };
  },
): Promise<LoadResult> {
  const perRequest = options.perRequest;
  const result = await autocannon({
    url,
    connections: options.connections,
    duration: options.seconds,
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.method ? { method: options.method } : {}),
    ...(options.body !== undefined ? { body: options.body } : {}),
    ...(perRequest
      ? {
          requests: [
            {
              setupRequest: (req: autocannon.Request): autocannon.Request => {
                const next = perRequest();
                return {
                  ...req,
                  ...(next.path !== undefined ? { path: next.path } : {}),
                  ...(next.body !== undefined ? { body: next.body } : {}),
                  ...(next.headers ? { headers: { ...req.headers, ...next.headers } } : {}),
                };
              },
            },
          ],
        }
      : {}),
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    failures: result.non2xx + result.errors,
  };
}

/**
 * Runs `run` for each side in turn, `rounds` times, alternating which side goes first, and
 * returns every side's per-round results (after one unmeasured warm-up each).
 */
export async function interleave<K extends string>(
  sides: readonly K[],
  rounds: number,
  run: (side: K) => Promise<LoadResult>,
): Promise<Record<K, LoadResult[]>> {
  for (const side of sides) await run(side);
  const results = Object.fromEntries(sides.map((s) => [s, [] as LoadResult[]])) as Record<K, LoadResult[]>;
  for (let i = 0; i < rounds; i += 1) {
    const order = i % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) results[side].push(await run(side));
  }
  return results;
}
