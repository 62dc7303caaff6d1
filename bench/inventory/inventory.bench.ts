/**
 * Inventory sync benchmark, loopback only, bounded in count and time.
 *
 *   node -r ./scripts/register.js bench/inventory/inventory.bench.ts
 *
 * 200 simulated Xen hosts (in-process ssh2 servers) with 20 domains each. Two things are
 * timed, interleaved round by round so drift hits both alike, over the same warm pool:
 *   sync   – one full syncHostsOnce: the hosts listed from Postgres, per host `xl info`,
 *            `xl list`, `xl list -l`, `vgs` over SSH and parsing, and every host's row
 *            written back (group commit: hosts answering together share one statement)
 *   direct – the same four commands per host over the same pooled connections with the
 *            same concurrency, output discarded: the floor the sync cannot beat
 * The ratio sync/direct is what the inventory layer adds; the goal is ≤ 1.25.
 */
import { performance } from 'node:perf_hooks';
import {
  forEachBounded,
  type HostEndpoint,
  loadConfig,
  observeHost,
  silentLogger,
  syncHostsOnce,
  systemClock,
} from '@norm/core';
import { dataSourceOptions, HostRepository } from '@norm/inventory';
import { sshOptions, SshXenHostFactory, vgsArgv, xlInfoArgv, xlListArgv, xlListLongArgv } from '@norm/xen';
import { type SimulatedFleet, startSimulatedFleet } from '@norm/xen/testing';
import { DataSource } from 'typeorm';
import { createScratchDatabase, median, startTimeBudget } from '../lib/bench-kit';

const HOSTS = 200;
const DOMAINS_PER_HOST = 20;
// Eleven interleaved rounds: on the shared two-core machine one round can be twice another.
const ROUNDS = 11;
const TIME_BUDGET_MS = 240_000;

async function main(): Promise<void> {
  startTimeBudget(TIME_BUDGET_MS);
  const config = loadConfig();
  const concurrency = config.hostSyncConcurrency;

  const fleet = await startSimulatedFleet({ count: HOSTS, mode: 'inprocess', namePrefix: 'inv-' });
  await populate(fleet);
  const scratch = await createScratchDatabase(config.databaseUrl, 'inventory');
  const ds = new DataSource(dataSourceOptions(scratch.url));
  await ds.initialize();
  // The production options, so the pool behaves as the worker's does (8 channels per host).
  const factory = new SshXenHostFactory(sshOptions({ privateKey: Buffer.from(fleet.clientKey.privateKey) }), {
    configDir: '/var/lib/norm/domains',
  });
  try {
    const repo = new HostRepository(ds.manager);
    const endpoints: HostEndpoint[] = [];
    for (const h of fleet.hosts) {
      const host = {
        name: h.name,
        address: h.address,
        port: h.port,
        sshUser: h.user,
        sudo: false,
        hostKeyFingerprint: h.fingerprint,
        labels: {},
        limits: {},
      };
      await repo.create(host, emptyObservation(), new Date(0));
      endpoints.push({ ...host, user: h.user });
    }
    const deps = { hosts: repo, xen: factory, clock: systemClock, log: silentLogger };
    const options = { concurrency, unreachableAfter: 3 };

    const sync = async (): Promise<number> => {
      const t0 = performance.now();
      const pass = await syncHostsOnce(deps, options);
      const ms = performance.now() - t0;
      if (pass.succeeded !== HOSTS) throw new Error(`sync: ${pass.failed} hosts failed`);
      return ms;
    };
    const direct = async (): Promise<number> => {
      const t0 = performance.now();
      await forEachBounded(endpoints, concurrency, undefined, async (e) => {
        const shell = factory.pool.forHost(e);
        await Promise.all([
          shell.exec(xlInfoArgv()),
          shell.exec(xlListArgv()),
          shell.exec(xlListLongArgv()),
          shell.exec(vgsArgv()),
        ]);
      });
      return performance.now() - t0;
    };

    // For the breakdown only: the sync's reads and parsing without its database writes.
    const observe = async (): Promise<number> => {
      const t0 = performance.now();
      await forEachBounded(endpoints, concurrency, undefined, async (e) => {
        await observeHost(factory.forHost(e));
      });
      return performance.now() - t0;
    };
    const run = { sync, direct, observe };

    // Warm-up: every connection opened (handshakes are not what either side measures).
    await sync();
    await direct();
    const samples = { sync: [] as number[], direct: [] as number[], observe: [] as number[] };
    const orders = [
      ['sync', 'direct', 'observe'],
      ['direct', 'observe', 'sync'],
      ['observe', 'sync', 'direct'],
    ] as const;
    for (let i = 0; i < ROUNDS; i++) {
      for (const kind of orders[i % orders.length]!) samples[kind].push(await run[kind]());
    }

    const synced = await repo.list();
    const domains = synced.reduce((n, h) => n + h.observedDomains.length, 0);
    const m = { sync: median(samples.sync), direct: median(samples.direct) };
    const ratio = m.sync / m.direct;
    console.log(
      `target: ${HOSTS} simulated Xen hosts (in-process ssh2, loopback) × ${DOMAINS_PER_HOST} domains ` +
        `(${domains} observed), concurrency ${concurrency}, Postgres ${new URL(scratch.url).host}`,
    );
    console.log(
      `full sync median ${m.sync.toFixed(0)} ms (${samples.sync.map((x) => x.toFixed(0)).join(' ')}), ` +
        `direct xl info + xl list + xl list -l + vgs median ${m.direct.toFixed(0)} ms ` +
        `(${samples.direct.map((x) => x.toFixed(0)).join(' ')}), n=${ROUNDS} each`,
    );
    console.log(`ratio sync/direct: ${ratio.toFixed(2)}× (goal ≤ 1.25×) ${ratio <= 1.25 ? 'OK' : 'MISSED'}`);
    const o = median(samples.observe);
    console.log(
      `breakdown: reads + parsing without the database median ${o.toFixed(0)} ms ` +
        `(${(o / m.direct).toFixed(2)}× direct); the rest is listing and writing ${HOSTS} host rows`,
    );
  } finally {
    await factory.close();
    await ds.destroy();
    await scratch.drop();
    await fleet.stop();
  }
}

/** 20 guests per host, each on its own snapshot volume, built through the simulated xl. */
async function populate(fleet: SimulatedFleet): Promise<void> {
  for (const h of fleet.hosts) {
    const state = h.sim.state;
    for (let i = 0; i < DOMAINS_PER_HOST; i++) {
      const name = `norm-vm-${i}`;
      state.lvs.push({ vg: 'vg0', name, sizeMb: 64, origin: 'golden-tiny' });
      const path = `${h.sim.configDir}/${name}.cfg`;
      h.sim.fs.writeFile(
        path,
        [
          `name = "${name}"`,
          'memory = 256',
          'vcpus = 1',
          'kernel = "/var/lib/norm/boot/vmlinuz"',
          `disk = [ "format=raw, vdev=xvda, access=rw, target=/dev/vg0/${name}" ]`,
          `vif = [ "mac=00:16:3e:00:${(i + 16).toString(16)}:01, bridge=xenbr0" ]`,
          '',
        ].join('\n'),
      );
      const r = await h.sim.exec(['xl', 'create', path]);
      if (r.exitCode !== 0) throw new Error(`xl create on ${h.name}: ${r.stderr}`);
    }
  }
}

function emptyObservation() {
  return {
    totalMemoryMb: 0,
    freeMemoryMb: 0,
    nrCpus: 0,
    xenVersion: 'unknown',
    storageTotalMb: 0,
    storageFreeMb: 0,
    volumeGroups: [],
    domains: [],
  };
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
