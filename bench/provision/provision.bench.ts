/**
 * Provisioning throughput against simulated hosts whose `xl create` takes 1.5 s.
 *
 *   node -r ./scripts/register.js bench/provision/provision.bench.ts
 *
 * 200 VMs over 10 simulated hosts, per-host cap 2. The hosts run in a process of their own, as
 * real hosts are other machines: their side of SSH must not share an event loop with the
 * callers. Two runs on one fleet:
 *   ideal – the very SSH calls the provision handler makes (lvs, lvcreate, xl list, the guest's
 *           NoCloud seed and its xl.cfg uploaded, xl create, xl list), issued directly with the
 *           same per-host limiter: the floor set by the hosts;
 *   norm  – 200 requests created through VmRequestService (approval and outbox in one
 *           transaction each) in a child process, as the api process does, relayed to BullMQ
 *           and provisioned by a WorkerRuntime in this one, whose jobs place them first.
 * Prints both wall times and norm/ideal (goal ≤ 1.05), and p50/p99 from the commit of the
 * approval (which writes the outbox row) to the handler's start, and to the request placed
 * and provisioning (after the placement pass and the worker's start gate).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  type ActingContext,
  generateToken,
  grantsForRoles,
  guestBootstrapFor,
  HostLimiter,
  loadConfig,
  type NormConfig,
  noMetrics,
  renderNoCloudSeed,
  silentLogger,
  vmRequestServiceFromConfig,
  type XenHost,
} from '@norm/core';
import { dataSourceOptions, HostRepository, PgVmRequestUnitOfWork } from '@norm/inventory';
import { sshOptions, SshXenHostFactory } from '@norm/xen';
import { startSimulatedFleet } from '@norm/xen/testing';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { WorkerRuntime } from '../../apps/worker/src/worker-runtime';

const HOSTS = 10;
const VMS = 200;
const PER_HOST = 2;
const CREATE_MS = 1_500;
const REQUESTERS = 20;
const TIME_BUDGET_MS = 300_000;

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
const wallNow = (): number => performance.timeOrigin + performance.now();

/** When each host was inside an `xl create` (ms since the run started), to see where time goes. */
type CreateTimeline = Map<string, Array<[number, number]>>;

interface FleetHostInfo {
  name: string;
  address: string;
  port: number;
  user: string;
  fingerprint: string;
}

type FleetMessage =
  | { kind: 'fleet'; hosts: FleetHostInfo[]; privateKey: string; configDir: string }
  | { kind: 'armed' }
  /** Per host, each create's [began, ended] in wall-clock ms. */
  | { kind: 'spans'; spans: Record<string, Array<[number, number]>> }
  | { kind: 'vm-hosts'; names: string[] };

type FleetRequest = { kind: 'slow'; count: number } | { kind: 'spans' } | { kind: 'vm-hosts' };

/**
 * The fleet's process: starts the simulated hosts, and on request arms `count` one-shot holds
 * per host on `xl create` (each released CREATE_MS after it catches one, its span recorded),
 * reports the spans, or names the hosts holding the norm run's domains.
 */
async function fleetProcess(): Promise<void> {
  const send = (m: FleetMessage): void => void process.send?.(m);
  const fleet = await startSimulatedFleet({
    count: HOSTS,
    mode: 'inprocess',
    hostOptions: { totalMemoryMb: 65_535, nrCpus: 64 },
  });
  let spans = new Map<string, Array<[number, number]>>();
  process.on('message', (m: FleetRequest) => {
    if (m.kind === 'slow') {
      spans = new Map();
      for (const h of fleet.hosts) {
        const mine: Array<[number, number]> = [];
        spans.set(h.name, mine);
        for (let i = 0; i < m.count; i++) {
          const hang = h.sim.faults.hangNext((argv) => argv.includes('xl') && argv.includes('create'));
          void hang.caught.then(() => {
            const began = wallNow();
            setTimeout(() => {
              mine.push([began, wallNow()]);
              hang.release();
            }, CREATE_MS);
          });
        }
      }
      send({ kind: 'armed' });
    } else if (m.kind === 'spans') send({ kind: 'spans', spans: Object.fromEntries(spans) });
    else
      send({
        kind: 'vm-hosts',
        names: fleet.hosts
          .filter((h) => h.sim.state.domainList().some((d) => d.name.startsWith('vm-')))
          .map((h) => h.name),
      });
  });
  process.once('disconnect', () => void fleet.stop().finally(() => process.exit(0)));
  send({
    kind: 'fleet',
    hosts: fleet.hosts.map((h) => ({
      name: h.name,
      address: h.address,
      port: h.port,
      user: h.user,
      fingerprint: h.fingerprint,
    })),
    privateKey: fleet.hosts[0]!.privateKey.toString('utf8'),
    configDir: fleet.hosts[0]!.configDir,
  });
}

/** The fleet's process seen from here: one question at a time. */
class RemoteFleet {
  private constructor(
    private readonly child: ChildProcess,
    readonly hosts: FleetHostInfo[],
    readonly privateKey: string,
    readonly configDir: string,
  ) {}

  static async start(): Promise<RemoteFleet> {
    const child = fork(__filename, ['--fleet'], { execArgv: ['-r', './scripts/register.js'] });
    const ready = await RemoteFleet.next(child);
    if (ready.kind !== 'fleet') throw new Error(`the fleet process said ${ready.kind} first`);
    return new RemoteFleet(child, ready.hosts, ready.privateKey, ready.configDir);
  }

  private static next(child: ChildProcess): Promise<FleetMessage> {
    return new Promise((resolve, reject) => {
      const exited = (code: number | null): void =>
        reject(new Error(`the fleet process exited with ${code}`));
      child.once('exit', exited);
      child.once('message', (m: FleetMessage) => {
        child.off('exit', exited);
        resolve(m);
      });
    });
  }

  private async ask<K extends FleetMessage['kind']>(
    request: FleetRequest,
    kind: K,
  ): Promise<Extract<FleetMessage, { kind: K }>> {
    const reply = RemoteFleet.next(this.child);
    this.child.send(request);
    const m = await reply;
    if (m.kind !== kind) throw new Error(`the fleet process answered ${m.kind}, not ${kind}`);
    return m as Extract<FleetMessage, { kind: K }>;
  }

  async slowCreates(count: number): Promise<void> {
    await this.ask({ kind: 'slow', count }, 'armed');
  }

  /** The creates since the last `slowCreates`, in ms since `start`. */
  async timeline(start: number): Promise<CreateTimeline> {
    const { spans } = await this.ask({ kind: 'spans' }, 'spans');
    return new Map(
      Object.entries(spans).map(([host, s]) => [
        host,
        s.map(([a, b]): [number, number] => [a - start, b - start]),
      ]),
    );
  }

  async hostsWithVms(): Promise<string[]> {
    return (await this.ask({ kind: 'vm-hosts' }, 'vm-hosts')).names;
  }

  stop(): void {
    if (this.child.connected) this.child.disconnect();
  }
}

/**
 * Where the wall time went, from the hosts' side: when the first create began (start-up
 * latency), and how long hosts sat with a free slot between their first and last create
 * (each host can run PER_HOST at once, so a free slot there is time the pipeline lost).
 */
function describeTimeline(timeline: CreateTimeline, wallMs: number): string {
  const firsts: number[] = [];
  const tails: number[] = [];
  let idleSlotMs = 0;
  for (const spans of timeline.values()) {
    if (spans.length === 0) continue;
    const sorted = [...spans].sort((a, b) => a[0] - b[0]);
    firsts.push(sorted[0]![0]);
    const last = Math.max(...sorted.map((s) => s[1]));
    tails.push(wallMs - last);
    const busy = sorted.reduce((sum, [a, b]) => sum + (b - a), 0);
    idleSlotMs += (last - sorted[0]![0]) * PER_HOST - busy;
  }
  const f = (v: number): string => (v / 1000).toFixed(2);
  return (
    `first xl create after ${f(Math.min(...firsts))}–${f(Math.max(...firsts))} s; ` +
    `free host slots between first and last create ${f(idleSlotMs / timeline.size)} slot·s per host; ` +
    `last create → done ${f(Math.min(...tails))}–${f(Math.max(...tails))} s`
  );
}

function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function ideal(
  fleet: RemoteFleet,
  factory: SshXenHostFactory,
): Promise<{ ms: number; timeline: string }> {
  const limiter = new HostLimiter(PER_HOST, 1_000);
  const hosts: XenHost[] = fleet.hosts.map((h) =>
    factory.forHost({
      name: h.name,
      address: h.address,
      port: h.port,
      user: h.user,
      hostKeyFingerprint: h.fingerprint,
      sudo: false,
    }),
  );
  await fleet.slowCreates(VMS / HOSTS);
  const start = wallNow();
  await Promise.all(
    Array.from({ length: VMS }, (_, i) => {
      const host = hosts[i % HOSTS]!;
      const name = `ideal-${i}`;
      return limiter.run(fleet.hosts[i % HOSTS]!.name, undefined, async () => {
        await host.logicalVolumes('vg0');
        await host.createVolume({
          vg: 'vg0',
          name: `${name}-disk0`,
          sizeMb: 1024,
          snapshotOf: 'golden-tiny',
        });
        await host.listDomains();
        const mac = `00:16:3e:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
        const ip = `10.200.${i >> 8}.${(i & 255) + 10}`;
        const id = randomUUID();
        // The same seed a disk-boot (pygrub) guest gets from the handler, so both upload as much.
        const seed = renderNoCloudSeed(
          guestBootstrapFor(
            { apiUrl: 'http://127.0.0.1:8080', intervalS: 30 },
            id,
            generateToken().token,
            { cidr: '10.200.0.0/22', gateway: '10.200.0.1' },
            ip,
          ),
          { instanceId: id, hostname: name, mac },
        );
        await host.createDomain(
          {
            name,
            vcpus: 1,
            memoryMb: 128,
            boot: { kind: 'pygrub' },
            disks: [{ target: `/dev/vg0/${name}-disk0`, vdev: 'xvda', access: 'rw' }],
            vifs: [{ mac, bridge: 'xenbr0' }],
          },
          seed,
        );
        await host.listDomains();
      });
    }),
  );
  const ms = wallNow() - start;
  return { ms, timeline: describeTimeline(await fleet.timeline(start), ms) };
}

function benchConfig(databaseUrl: string, prefix: string): NormConfig {
  return loadConfig({
    ...process.env,
    DATABASE_URL: databaseUrl,
    NORM_REDIS_PREFIX: prefix,
    NORM_WORKER_CONCURRENCY: '256',
    NORM_PROVISION_HOST_CONCURRENCY: String(PER_HOST),
    NORM_PROVISION_GLOBAL_CONCURRENCY: '1000',
    NORM_QUOTA_PER_PRINCIPAL: 'instances=100000',
    NORM_OUTBOX_POLL_INTERVAL: '1s',
  });
}

/** What the main process tells the requesters' process: go, with these. */
interface Go {
  imageId: string;
  networkId: string;
}

type RequesterMessage =
  | { kind: 'ready' }
  | { kind: 'committed'; requestId: string; at: number }
  | { kind: 'done' }
  | { kind: 'failed'; message: string };

/**
 * The requesters' process: twenty requesters, as a team would (one owner's requests serialise
 * on its quota lock by design), create the 200 requests on `go` and report each commit.
 */
async function requesterProcess(): Promise<void> {
  const send = (m: RequesterMessage): void => void process.send?.(m);
  const config = benchConfig(process.env.DATABASE_URL!, process.env.NORM_REDIS_PREFIX!);
  const ds = new DataSource({ ...dataSourceOptions(config.databaseUrl), extra: { max: 20 } });
  await ds.initialize();
  const service = vmRequestServiceFromConfig(config, new PgVmRequestUnitOfWork(ds));
  const contexts: ActingContext[] = Array.from({ length: REQUESTERS }, () => {
    const id = randomUUID();
    return {
      subject: {
        kind: 'principal',
        principal: {
          id,
          kind: 'person',
          name: `bench-${id.slice(0, 8)}`,
          roles: ['requester'],
          groups: [],
          createdAt: new Date(),
        },
        tokenId: randomUUID(),
        grants: grantsForRoles(['requester']),
      },
    };
  });
  process.once('message', (go: Go) => {
    void Promise.all(
      Array.from({ length: VMS }, (_, i) =>
        service
          .create(contexts[i % REQUESTERS]!, {
            name: `vm-${i}`,
            vcpus: 1,
            memoryMb: 256,
            diskGb: 1,
            imageId: go.imageId,
            networkId: go.networkId,
            lifecycleClass: 'cattle',
          })
          // create() resolves right after the commit that wrote the outbox row.
          .then(({ request }) => send({ kind: 'committed', requestId: request.id, at: Date.now() })),
      ),
    )
      .then(() => send({ kind: 'done' }))
      .catch((error: unknown) => send({ kind: 'failed', message: String(error) }))
      .finally(() => void ds.destroy());
  });
  send({ kind: 'ready' });
}

async function main(): Promise<void> {
  const hardStop = setTimeout(() => {
    process.stderr.write('bench/provision: time budget exceeded\n');
    process.exit(2);
  }, TIME_BUDGET_MS);
  hardStop.unref();

  const base = loadConfig(process.env);
  const dbName = `norm_bench_provision_${Date.now().toString(36)}`;
  const adminUrl = new URL(base.databaseUrl);
  adminUrl.pathname = '/postgres';
  const admin = new Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  const dbUrl = new URL(base.databaseUrl);
  dbUrl.pathname = `/${dbName}`;
  const prefix = `norm-bench-provision-${process.pid}`;
  const fleet = await RemoteFleet.start();
  const config = benchConfig(dbUrl.toString(), prefix);
  // The requesters' side (in its own process) and the worker each get their own pool, as the
  // api and worker processes do: 200 creations queued on their owners' quota locks must not
  // hold the worker's connections.
  const ds = new DataSource({ ...dataSourceOptions(config.databaseUrl), extra: { max: 20 } });
  const workerDs = new DataSource({ ...dataSourceOptions(config.databaseUrl), extra: { max: 20 } });
  const factory = new SshXenHostFactory(sshOptions({ privateKey: Buffer.from(fleet.privateKey) }), {
    configDir: fleet.configDir,
  });
  let runtime: WorkerRuntime | undefined;
  let requesters: ChildProcess | undefined;
  try {
    await ds.initialize();
    await ds.runMigrations({ transaction: 'each' });
    await workerDs.initialize();
    const idealRun = await ideal(fleet, factory);
    const idealMs = idealRun.ms;

    const hostRepo = new HostRepository(ds.manager);
    for (const h of fleet.hosts)
      await hostRepo.create(
        {
          name: h.name,
          address: h.address,
          port: h.port,
          sshUser: h.user,
          sudo: false,
          hostKeyFingerprint: h.fingerprint,
          labels: {},
          limits: {},
        },
        {
          totalMemoryMb: 65_535,
          freeMemoryMb: 60_000,
          nrCpus: 64,
          xenVersion: '4.17.5',
          storageTotalMb: 512 * 1024,
          storageFreeMb: 500 * 1024,
          volumeGroups: [{ name: 'vg0', sizeMb: 512 * 1024, freeMb: 500 * 1024 }],
          domains: [],
        },
        new Date(),
      );
    const uow = new PgVmRequestUnitOfWork(ds);
    const { image, network } = await uow.run(async (tx) => ({
      image: await tx.images.create({
        name: 'bench',
        osLabel: 'bench',
        boot: { method: 'pygrub' },
        defaultDiskGb: 1,
        goldenVolumes: [{ vg: 'vg0', lv: 'golden-tiny' }],
      }),
      network: await tx.networks.create({
        name: 'bench',
        bridge: 'xenbr0',
        cidr: '10.200.0.0/22',
        gateway: '10.200.0.1',
        rangeStart: '10.200.0.10',
        rangeEnd: '10.200.3.250',
      }),
    }));
    // The requesters run in their own process with their own pool, as the api does: their
    // JavaScript must not share an event loop with the worker's.
    requesters = fork(__filename, ['--requesters'], {
      execArgv: ['-r', './scripts/register.js'],
      env: { ...process.env, DATABASE_URL: dbUrl.toString(), NORM_REDIS_PREFIX: prefix },
    });
    const committedAt = new Map<string, number>();
    let ready = (): void => undefined;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    const child = requesters;
    const created = new Promise<void>((resolve, reject) => {
      child.on('message', (m: RequesterMessage) => {
        if (m.kind === 'ready') ready();
        else if (m.kind === 'committed') committedAt.set(m.requestId, m.at);
        else if (m.kind === 'done') resolve();
        else reject(new Error(`requesters failed: ${m.message}`));
      });
      child.once('exit', (code) => reject(new Error(`requesters exited with ${code}`)));
    });
    await Promise.race([isReady, created]);

    let start = 0;
    const stepAt = new Map<string, number[]>();
    // When each job's handler was entered (its first step hook, before it waits for anything).
    const handlerStartedAt = new Map<string, number>();
    runtime = new WorkerRuntime(config, workerDs, silentLogger, factory, noMetrics, (step, requestId) => {
      const at = stepAt.get(step) ?? [];
      at.push(wallNow() - start);
      stepAt.set(step, at);
      if (step === 'place' && !handlerStartedAt.has(requestId)) handlerStartedAt.set(requestId, Date.now());
    });
    runtime.start();
    await fleet.slowCreates(VMS / HOSTS);
    start = wallNow();
    child.send({ imageId: image.id, networkId: network.id } satisfies Go);
    await created;
    const createdMs = wallNow() - start;
    // The bench's own queries must not load the Postgres it measures: one poll every 250 ms
    // until every job has reached its last step, then one every 5 ms for the last commits.
    for (let polled = 0; ; await new Promise((r) => setTimeout(r, 5))) {
      const finishing = (stepAt.get('mark-running')?.length ?? 0) >= VMS;
      if (!finishing && wallNow() - polled < 250) continue;
      polled = wallNow();
      const rows: Array<{ state: string; n: number }> = await ds.query(
        `SELECT "state", count(*)::int AS n FROM "vm_requests" GROUP BY "state"`,
      );
      const done = rows
        .filter((r) => r.state === 'running' || r.state === 'failed')
        .reduce((a, r) => a + r.n, 0);
      if (done >= VMS) break;
    }
    const normMs = wallNow() - start;
    const rows: Array<{
      id: string;
      history: Array<{ to: string; at: string }>;
      state: string;
      error: { code?: string; message?: string } | null;
    }> = await ds.query(`SELECT "id", "history", "state", "error" FROM "vm_requests"`);
    const failed = rows.filter((r) => r.state !== 'running').length;
    const reasons = new Map<string, number>();
    for (const r of rows.filter((x) => x.state !== 'running')) {
      const key = `${r.error?.code ?? '?'}: ${(r.error?.message ?? '').slice(0, 120)}`;
      reasons.set(key, (reasons.get(key) ?? 0) + 1);
    }
    for (const [k, n] of reasons) console.log(`failed ${n}× ${k}`);
    const sinceCommit = (at: (r: (typeof rows)[number]) => number): number[] =>
      rows.map((r) => at(r) - (committedAt.get(r.id) ?? NaN)).filter((v) => Number.isFinite(v));
    const lag = sinceCommit((r) => handlerStartedAt.get(r.id) ?? NaN);
    // Placed and begun: after the placement pass and the worker's start gate (a few at a time).
    const begun = sinceCommit((r) => Date.parse(r.history.find((h) => h.to === 'provisioning')?.at ?? ''));
    const hostsSeen = await fleet.hostsWithVms();
    const timeline = await fleet.timeline(start);

    console.log(
      `${VMS} VMs from ${REQUESTERS} requesters over ${HOSTS} simulated hosts, xl create ${CREATE_MS} ms, per-host cap ${PER_HOST}`,
    );
    console.log(`ideal (same SSH calls, same per-host limiter): ${(idealMs / 1000).toFixed(2)} s`);
    console.log(
      `norm  (API service → outbox → BullMQ → worker): ${(normMs / 1000).toFixed(2)} s, failed ${failed}, hosts used ${hostsSeen.length}`,
    );
    // When each step began, across the 200 jobs: where a job waits before reaching its host.
    for (const [step, at] of stepAt)
      console.log(
        `  step ${step.padEnd(13)} began first ${(pct(at, 0) / 1000).toFixed(2)} s, p50 ${(pct(at, 50) / 1000).toFixed(2)} s, last ${(pct(at, 100) / 1000).toFixed(2)} s`,
      );
    console.log(`  ideal: ${idealRun.timeline}`);
    console.log(`  norm:  ${describeTimeline(timeline, normMs)}`);
    console.log(
      `  of which creating the ${VMS} requests (approval, outbox): ${(createdMs / 1000).toFixed(2)} s`,
    );
    const ratio = normMs / idealMs;
    console.log(`ratio norm/ideal: ${ratio.toFixed(3)} (goal ≤ 1.05) ${ratio <= 1.05 ? 'OK' : 'MISSED'}`);
    console.log(
      `outbox commit → handler start: p50 ${pct(lag, 50).toFixed(0)} ms, p99 ${pct(lag, 99).toFixed(0)} ms`,
    );
    console.log(
      `outbox commit → placed and provisioning: p50 ${pct(begun, 50).toFixed(0)} ms, p99 ${pct(begun, 99).toFixed(0)} ms`,
    );
  } finally {
    requesters?.kill();
    await runtime?.stop();
    await factory.close();
    fleet.stop();
    await ds.destroy().catch(() => undefined);
    await workerDs.destroy().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.end();
    const { Redis } = await import('ioredis');
    const redis = new Redis(base.redisUrl);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
}

if (process.argv.includes('--fleet')) void fleetProcess();
else if (process.argv.includes('--requesters')) void requesterProcess();
else void main();
