/**
 * SSH transport benchmark, loopback only, bounded in count and time.
 *
 *   node -r ./scripts/register.js bench/ssh/ssh.bench.ts
 *
 * Measures the latency of `xl list` against one simulated host three ways, interleaved
 * round by round so drift (CPU frequency, GC, other load) hits all three alike:
 *   pooled – SshPool, the production path (queue, deadline, quoting, classification)
 *   raw    – a bare ssh2 exec on an already open connection with TCP_NODELAY: the floor
 *   fresh  – a new connection (TCP + handshake + auth) per command: what pooling saves
 * Then the throughput of 1,000 commands spread over 10 hosts through one pool.
 */
import { connect as netConnect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Client } from 'ssh2';
import { type HostEndpoint } from '@norm/core';
import { sshOptions, SshPool } from '../../libs/xen/src/ssh';
import { startBenchHosts, type BenchHost } from './bench-hosts';

const ROUNDS = 300;
const FRESH_EVERY = 5; // fresh connections are ~100× dearer; sample them less often
const WARMUP = 30;
const THROUGHPUT_COMMANDS = 1_000;
const HOSTS = 10;
const TIME_BUDGET_MS = 90_000;

const ARGV = ['xl', 'list'] as const;

async function main(): Promise<void> {
  const hardStop = setTimeout(() => {
    console.error(`bench exceeded ${TIME_BUDGET_MS} ms; aborting`);
    process.exit(2);
  }, TIME_BUDGET_MS);
  hardStop.unref();

  const hosts = await startBenchHosts(HOSTS);
  const first = hosts.hosts[0]!;
  const pool = new SshPool(sshOptions({ privateKey: hosts.privateKey }));
  const pooled = pool.forHost(first.endpoint);
  const command = first.commandLine(ARGV);
  const raw = await openRaw(first.endpoint, hosts.privateKey);

  try {
    for (let i = 0; i < WARMUP; i += 1) {
      await pooled.exec(ARGV);
      await rawExec(raw, command);
    }
    await freshExec(first.endpoint, hosts.privateKey, command);

    const samples = { pooled: [] as number[], raw: [] as number[], fresh: [] as number[] };
    for (let i = 0; i < ROUNDS; i += 1) {
      // Alternate which goes first, so neither always runs on a just-warmed path.
      const order = i % 2 === 0 ? (['pooled', 'raw'] as const) : (['raw', 'pooled'] as const);
      for (const kind of order) {
        const t0 = performance.now();
        if (kind === 'pooled') await pooled.exec(ARGV);
        else await rawExec(raw, command);
        samples[kind].push(performance.now() - t0);
      }
      if (i % FRESH_EVERY === 0) {
        const t0 = performance.now();
        await freshExec(first.endpoint, hosts.privateKey, command);
        samples.fresh.push(performance.now() - t0);
      }
    }

    const m = { pooled: median(samples.pooled), raw: median(samples.raw), fresh: median(samples.fresh) };
    console.log(`target: ${hosts.description}`);
    console.log(
      `xl list median latency (ms): pooled ${m.pooled.toFixed(3)} (n=${samples.pooled.length}), ` +
        `raw ${m.raw.toFixed(3)} (n=${samples.raw.length}), fresh ${m.fresh.toFixed(3)} (n=${samples.fresh.length})`,
    );
    console.log(
      `xl list p90 latency (ms): pooled ${p90(samples.pooled).toFixed(3)}, raw ${p90(samples.raw).toFixed(3)}, ` +
        `fresh ${p90(samples.fresh).toFixed(3)}`,
    );
    const overRaw = m.pooled / m.raw;
    const freshOverPooled = m.fresh / m.pooled;
    console.log(`ratio pooled/raw:   ${overRaw.toFixed(2)}× (goal ≤ 2×) ${overRaw <= 2 ? 'OK' : 'MISSED'}`);
    console.log(
      `ratio fresh/pooled: ${freshOverPooled.toFixed(1)}× (goal ≥ 20×) ${freshOverPooled >= 20 ? 'OK' : 'MISSED'}`,
    );

    // Throughput: every command issued at once; the pool queues beyond 8 channels per host.
    const endpoints = hosts.hosts.map((h) => h.endpoint);
    await Promise.all(endpoints.map((e) => pool.forHost(e).exec(ARGV)));
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: THROUGHPUT_COMMANDS }, (_, i) => pool.forHost(endpoints[i % HOSTS]!).exec(ARGV)),
    );
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `throughput: ${THROUGHPUT_COMMANDS} × xl list over ${HOSTS} hosts in ${(seconds * 1000).toFixed(0)} ms ` +
        `= ${(THROUGHPUT_COMMANDS / seconds).toFixed(0)} commands/s`,
    );
  } finally {
    raw.end();
    await pool.close();
    await hosts.close();
  }
}

function openRaw(endpoint: HostEndpoint, privateKey: string | Buffer): Promise<Client> {
  return new Promise<Client>((resolve, reject) => {
    const sock = netConnect({ host: endpoint.address, port: endpoint.port });
    sock.setNoDelay(true);
    const client = new Client();
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    // The bench talks to its own loopback hosts; the pinned-key check is the pool's job.
    client.connect({ sock, username: endpoint.user, privateKey });
  });
}

function rawExec(client: Client, command: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(err);
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.stderr.resume();
      stream.on('close', () => resolve(Buffer.concat(chunks).toString()));
    });
  });
}

async function freshExec(
  endpoint: HostEndpoint,
  privateKey: string | Buffer,
  command: string,
): Promise<void> {
  const client = await openRaw(endpoint, privateKey);
  try {
    await rawExec(client, command);
  } finally {
    client.end();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function p90(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))]!;
}

export type { BenchHost };

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
