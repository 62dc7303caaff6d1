/**
 * SSH transport benchmark, loopback only, bounded in count and time.
 *
 *   node -r ./scripts/register.js bench/ssh/ssh.bench.ts
 *
 * Measures command latency three ways, interleaved round by round:
 *   pooled – SshPool, the production path (queue, deadline, quoting, classification)
 *   raw    – a bare ssh2 exec on an already open connection with TCP_NODELAY: the floor
 *   fresh  – a new connection (TCP + handshake + auth) per command: what pooling saves
 * twice: `xl list` on an in-process simulated host, where both goals are judged as the issue
 * states them (pooled ≤ 2× raw, fresh ≥ 20× pooled, all three against the same host), and a
 * trivial command through a real OpenSSH sshd, shown for information: there each channel is a
 * forked session, so a pooled command costs tens of ms and the fresh/pooled ratio is lower.
 * Then the throughput of 1,000 commands spread over 10 hosts through one pool.
 */
import { connect as netConnect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Client } from 'ssh2';
import { type HostEndpoint } from '@norm/core';
import { quoteArgv } from '@norm/xen';
import { startSimulatedFleet } from '@norm/xen/testing';
import { sshOptions, SshPool } from '../../libs/xen/src/ssh';
import { startBenchHosts, type BenchHost } from './bench-hosts';

const ROUNDS = 300;
// sshd forks a session per channel and a process per connection: far slower, so fewer rounds.
const SSHD_ROUNDS = 40;
const FRESH_EVERY = 5; // fresh connections are ~100× dearer; sample them less often
const WARMUP = 30;
const THROUGHPUT_COMMANDS = 1_000;
const HOSTS = 10;
const TIME_BUDGET_MS = 180_000;

const ARGV = ['xl', 'list'] as const;

interface Samples {
  pooled: number[];
  raw: number[];
  fresh: number[];
}

/**
 * Pooled, raw and fresh latency of one command against one host, interleaved round by
 * round so drift (CPU frequency, GC, other load) hits all three alike.
 */
async function measure(
  pool: SshPool,
  endpoint: HostEndpoint,
  privateKey: Buffer,
  argv: readonly string[],
  rounds: number,
  freshEvery = FRESH_EVERY,
): Promise<Samples> {
  const pooled = pool.forHost(endpoint);
  const command = quoteArgv(argv);
  const raw = await openRaw(endpoint, privateKey);
  try {
    for (let i = 0; i < Math.min(WARMUP, rounds / 4); i += 1) {
      await pooled.exec(argv);
      await rawExec(raw, command);
    }
    await freshExec(endpoint, privateKey, command);
    const samples: Samples = { pooled: [], raw: [], fresh: [] };
    for (let i = 0; i < rounds; i += 1) {
      // Alternate which goes first, so neither always runs on a just-warmed path.
      const order = i % 2 === 0 ? (['pooled', 'raw'] as const) : (['raw', 'pooled'] as const);
      for (const kind of order) {
        const t0 = performance.now();
        if (kind === 'pooled') await pooled.exec(argv);
        else await rawExec(raw, command);
        samples[kind].push(performance.now() - t0);
      }
      if (i % freshEvery === 0) {
        const t0 = performance.now();
        await freshExec(endpoint, privateKey, command);
        samples.fresh.push(performance.now() - t0);
      }
    }
    return samples;
  } finally {
    raw.end();
  }
}

function report(label: string, samples: Samples, freshGoal: boolean): void {
  const m = { pooled: median(samples.pooled), raw: median(samples.raw), fresh: median(samples.fresh) };
  console.log(`${label}`);
  console.log(
    `  median latency (ms): pooled ${m.pooled.toFixed(3)} (n=${samples.pooled.length}), ` +
      `raw ${m.raw.toFixed(3)} (n=${samples.raw.length}), fresh ${m.fresh.toFixed(3)} (n=${samples.fresh.length})`,
  );
  console.log(
    `  p90 latency (ms):    pooled ${p90(samples.pooled).toFixed(3)}, raw ${p90(samples.raw).toFixed(3)}, ` +
      `fresh ${p90(samples.fresh).toFixed(3)}`,
  );
  const overRaw = m.pooled / m.raw;
  const freshOverPooled = m.fresh / m.pooled;
  console.log(`  ratio pooled/raw:   ${overRaw.toFixed(2)}× (goal ≤ 2×) ${overRaw <= 2 ? 'OK' : 'MISSED'}`);
  console.log(
    `  ratio fresh/pooled: ${freshOverPooled.toFixed(1)}×` +
      (freshGoal ? ` (goal ≥ 20×) ${freshOverPooled >= 20 ? 'OK' : 'MISSED'}` : ' (for information)'),
  );
}

async function main(): Promise<void> {
  let stopSshd = (): Promise<void> => Promise.resolve();
  const hardStop = setTimeout(() => {
    console.error(`bench exceeded ${TIME_BUDGET_MS} ms; aborting`);
    // The sshd is a child process with a temp dir: stop it rather than leak it.
    const exit = (): never => process.exit(2);
    setTimeout(exit, 5_000).unref();
    void stopSshd().then(exit, exit);
  }, TIME_BUDGET_MS);
  hardStop.unref();

  const hosts = await startBenchHosts(HOSTS);
  const first = hosts.hosts[0]!;
  const pool = new SshPool(sshOptions({ privateKey: hosts.privateKey }));
  const sshd = await startSimulatedFleet({ count: 1, mode: 'openssh', namePrefix: 'bench-sshd' });
  stopSshd = () => sshd.stop();
  const real = sshd.hosts[0]!;
  const realEndpoint: HostEndpoint = {
    name: real.name,
    address: real.address,
    port: real.port,
    user: real.user,
    hostKeyFingerprint: real.fingerprint,
    sudo: false,
  };
  const realKey = Buffer.from(sshd.clientKey.privateKey);
  const realPool = new SshPool(sshOptions({ privateKey: realKey }));

  try {
    console.log(`target: ${hosts.description}; and one real OpenSSH sshd (${real.address}:${real.port})`);
    report(
      'xl list, in-process simulated host (pooled vs. raw vs. fresh connection, same host)',
      await measure(pool, first.endpoint, hosts.privateKey, ARGV, ROUNDS),
      true,
    );
    // Under sshd the simulated xl is a node forwarder (~tens of ms to start), which would
    // swamp the connection cost; `true` is what sshd itself runs in ~1 ms, so the ratio
    // is the cost of a new connection (TCP, key exchange, auth, sshd's fork) over a channel.
    report(
      '`true` through a real OpenSSH sshd (fresh connection per command vs. a channel on the pooled one)',
      await measure(realPool, realEndpoint, realKey, ['true'], SSHD_ROUNDS, 2),
      false,
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
      `throughput: ${THROUGHPUT_COMMANDS} × xl list over ${HOSTS} in-process hosts in ${(seconds * 1000).toFixed(0)} ms ` +
        `= ${(THROUGHPUT_COMMANDS / seconds).toFixed(0)} commands/s`,
    );
  } finally {
    await pool.close();
    await realPool.close();
    await hosts.close();
    await sshd.stop();
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
