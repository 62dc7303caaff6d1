import {
  type ActingContext,
  DEFAULT_PLACEMENT_OPTIONS,
  type DomainConfig,
  type DomainError,
  HostService,
  isDomainError,
  type NewHost,
  PlacementService,
  silentLogger,
  syncHostsOnce,
  systemClock,
  type XenHost,
} from '@norm/core';
import { HostRepository, PgInventoryUnitOfWork } from '@norm/inventory';
import { sshOptions, SshXenHostFactory } from '@norm/xen';
import {
  type SimulatedFleet,
  type SimulatedFleetHost,
  type SimulatedFleetMode,
  startSimulatedFleet,
} from '@norm/xen/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { insertInstance } from '../inventory/builders';
import { aPrincipal } from '../vm-requests/builders';

/**
 * Inventory against simulated Xen hosts instead of a fake XenHostFactory: registration,
 * sync, drift and maintenance through the real SSH transport, `xl` and LVM output, in both
 * simulator modes (in-process ssh2 and a real OpenSSH sshd).
 */
const MODES: SimulatedFleetMode[] = ['inprocess', 'openssh'];

describe.each(MODES)('inventory against simulated hosts over %s', (mode) => {
  const db = useTestDatabase();
  let fleet: SimulatedFleet;
  let factory: SshXenHostFactory;
  let service: HostService;
  let repo: HostRepository;
  let admin: ActingContext;
  /** Per host: a XenHost that uploads configs where that host's `xl create` reads them. */
  const operators: SshXenHostFactory[] = [];
  const ids = new Map<string, string>();

  beforeAll(async () => {
    fleet = await startSimulatedFleet({
      count: 3,
      mode,
      namePrefix: `${mode}-xen-`,
      // Like the `norm` user on a real host: xl and LVM only through sudo -n.
      hostOptions: { requireSudo: true },
    });
    // Short backoff: a host that comes back is retried at the next sync, not seconds later.
    factory = new SshXenHostFactory(
      sshOptions({
        privateKey: fleet.clientKey.privateKey,
        connectTimeoutMs: 3_000,
        backoff: { baseMs: 20, maxMs: 100 },
      }),
      { configDir: '/var/lib/norm/domains' },
    );
    repo = new HostRepository(db.dataSource.manager);
    service = new HostService({
      uow: new PgInventoryUnitOfWork(db.dataSource),
      xen: factory,
      clock: systemClock,
      log: silentLogger,
    });
    admin = aPrincipal(['admin']);
  });
  afterAll(async () => {
    await factory.close();
    await Promise.all(operators.map((o) => o.close()));
    await fleet.stop();
  });

  function newHost(h: SimulatedFleetHost, over: Partial<NewHost> = {}): NewHost {
    return {
      name: h.name,
      address: h.address,
      port: h.port,
      sshUser: h.user,
      sudo: true,
      hostKeyFingerprint: h.fingerprint,
      labels: { rack: 'r1' },
      limits: {},
      ...over,
    };
  }

  function operate(h: SimulatedFleetHost): XenHost {
    const f = new SshXenHostFactory(sshOptions({ privateKey: fleet.clientKey.privateKey }), {
      configDir: h.configDir,
    });
    operators.push(f);
    return f.forHost({ ...newHost(h), user: h.user });
  }

  async function startDomain(h: SimulatedFleetHost, name: string, memoryMb: number): Promise<void> {
    const x = operate(h);
    await x.createVolume({ vg: 'vg0', name, sizeMb: 64, snapshotOf: 'golden-tiny' });
    await x.createDomain(domain(name, memoryMb));
  }

  const sync = () =>
    syncHostsOnce(
      { hosts: repo, xen: factory, clock: systemClock, log: silentLogger },
      {
        concurrency: 8,
        unreachableAfter: 2,
      },
    );

  const host = (i: number): SimulatedFleetHost => fleet.hosts[i]!;

  it('registers a reachable host with its capacity, read over SSH', async () => {
    for (const i of [0, 1]) {
      const h = host(i);
      const record = await service.register(admin, newHost(h));
      ids.set(h.name, record.id);
      const free = h.sim.state.memory().freeMb;
      expect(record).toMatchObject({
        name: h.name,
        status: 'online',
        totalMemoryMb: 16383,
        freeMemoryMb: free,
        nrCpus: 4,
        xenVersion: '4.17.5',
      });
      expect(record.storageFreeMb).toBeGreaterThan(0);
      expect(record.observedDomains.map((d) => d.name)).not.toContain('Domain-0');
    }
    // Every probe command went through sudo -n, as on a real host.
    expect(host(0).sim.log.length).toBeGreaterThan(0);
    expect(host(0).sim.log.every((r) => r.sudo)).toBe(true);
  });

  it('refuses a host that presents another key, saying which key it saw, and runs nothing', async () => {
    const h = host(2);
    const before = h.sim.log.length;
    const err = await failure(
      service.register(admin, newHost(h, { hostKeyFingerprint: host(0).fingerprint })),
    );
    expect(err.code).toBe('ValidationFailed');
    expect(JSON.stringify(err.details)).toContain(h.fingerprint);
    expect(h.sim.log.length).toBe(before);
    expect((await repo.list()).some((r) => r.name === h.name)).toBe(false);
  });

  it('refuses a host it cannot reach, saying where it tried', async () => {
    const h = host(2);
    await h.sim.faults.hostDown();
    try {
      const err = await failure(service.register(admin, newHost(h)));
      expect(err.code).toBe('DependencyUnavailable');
      expect(err.details).toMatchObject({ address: h.address, port: h.port });
    } finally {
      await h.sim.faults.hostUp();
    }
    expect((await repo.list()).some((r) => r.name === h.name)).toBe(false);
  });

  it('sync follows capacity as domains come and go', async () => {
    const h = host(0);
    const id = ids.get(h.name)!;
    const free0 = (await repo.get(id))!.freeMemoryMb!;
    await startDomain(h, 'norm-web-1', 512);
    await startDomain(h, 'norm-web-2', 1024);
    await sync();
    const after = (await repo.get(id))!;
    expect(after.freeMemoryMb).toBe(free0 - 1536);
    expect(after.observedDomains.map((d) => d.name).sort()).toEqual(['norm-web-1', 'norm-web-2']);
    expect(after.observedDomains.find((d) => d.name === 'norm-web-1')).toMatchObject({
      memoryMb: 512,
      macs: ['00:16:3e:12:34:56'],
    });
    expect(after.storageFreeMb).toBeLessThan(free0 * 1_000_000);

    await operate(h).destroyDomain('norm-web-2');
    await sync();
    const later = (await repo.get(id))!;
    expect(later.freeMemoryMb).toBe(free0 - 512);
    expect(later.observedDomains.map((d) => d.name)).toEqual(['norm-web-1']);
  });

  it('marks a host unreachable after consecutive failures and online when it answers again', async () => {
    const h = host(1);
    const id = ids.get(h.name)!;
    await h.sim.faults.hostDown();
    try {
      const first = await sync();
      expect(first.failed).toBe(1);
      expect((await repo.get(id))?.status).toBe('online');
      await sync();
      expect(await repo.get(id)).toMatchObject({ status: 'unreachable', consecutiveSyncFailures: 2 });
      // The other host kept syncing meanwhile.
      expect((await repo.get(ids.get(host(0).name)!))?.status).toBe('online');
    } finally {
      await h.sim.faults.hostUp();
    }
    await expectEventually(async () => {
      await sync();
      expect(await repo.get(id)).toMatchObject({ status: 'online', consecutiveSyncFailures: 0 });
    });
  });

  it('reports every drift kind and changes nothing on the hosts', async () => {
    const [a, b] = [host(0), host(1)];
    const [idA, idB] = [ids.get(a.name)!, ids.get(b.name)!];
    // Norm knows norm-web-1 on A; believes norm-gone-1 runs on A; and norm-db-1 on A, which
    // is in fact on B. A's norm-stray-1 is nobody's.
    await insertInstance(db.dataSource, { hostId: idA, domainName: 'norm-web-1' });
    await insertInstance(db.dataSource, { hostId: idA, domainName: 'norm-gone-1' });
    await insertInstance(db.dataSource, { hostId: idA, domainName: 'norm-db-1' });
    await startDomain(b, 'norm-db-1', 256);
    await startDomain(a, 'norm-stray-1', 256);
    const destroysBefore =
      a.sim.commands(['xl', 'destroy']).length + b.sim.commands(['xl', 'destroy']).length;
    await sync();
    const report = await service.drift();
    const kinds = report.entries
      .map((e) => `${e.kind}:${e.kind === 'orphan_domain' ? e.domain.name : e.domainName}`)
      .sort();
    expect(kinds).toEqual([
      'orphan_domain:norm-stray-1',
      'vanished_instance:norm-gone-1',
      'wrong_host:norm-db-1',
    ]);
    const wrong = report.entries.find((e) => e.kind === 'wrong_host');
    expect(wrong).toMatchObject({ hostId: idB, expectedHostId: idA });
    expect((await service.drift(idB)).entries.map((e) => e.kind)).toEqual(['wrong_host']);
    // Report-only: no domain was touched by the sync or the report.
    expect(a.sim.commands(['xl', 'destroy']).length + b.sim.commands(['xl', 'destroy']).length).toBe(
      destroysBefore,
    );
    expect(b.sim.state.findByName('norm-db-1')).toBeDefined();
    expect(a.sim.state.findByName('norm-stray-1')).toBeDefined();
  });

  it('keeps a host in maintenance out of placement, with its domains untouched', async () => {
    const placement = new PlacementService(new PgInventoryUnitOfWork(db.dataSource), {
      ...DEFAULT_PLACEMENT_OPTIONS,
      antiAffinityMode: 'soft',
    });
    const ask = { memoryMb: 512, vcpus: 1, diskGb: 1 };
    const first = await placement.preview(ask);
    const chosen = first.chosen?.hostName;
    expect([host(0).name, host(1).name]).toContain(chosen);
    const chosenId = ids.get(chosen!)!;
    const domainsBefore = host(0).sim.state.domainList().length + host(1).sim.state.domainList().length;

    await service.setMaintenance(admin, chosenId, true);
    const during = await placement.preview(ask);
    expect(during.chosen?.hostName).toBeDefined();
    expect(during.chosen?.hostName).not.toBe(chosen);
    expect(during.rejected.find((r) => r.hostId === chosenId)?.reasons.map((x) => x.code)).toContain(
      'maintenance',
    );
    // Syncing goes on while in maintenance; the host just takes no new VMs.
    await sync();
    expect((await repo.get(chosenId))?.maintenance).toBe(true);
    expect(host(0).sim.state.domainList().length + host(1).sim.state.domainList().length).toBe(domainsBefore);

    await service.setMaintenance(admin, chosenId, false);
    expect((await placement.preview(ask)).chosen?.hostName).toBe(chosen);
  });
});

function domain(name: string, memoryMb: number): DomainConfig {
  return {
    name,
    vcpus: 1,
    memoryMb,
    boot: { kind: 'kernel', kernel: '/var/lib/norm/boot/vmlinuz', extra: 'console=hvc0' },
    disks: [{ target: `/dev/vg0/${name}`, vdev: 'xvda', access: 'rw' }],
    vifs: [{ mac: '00:16:3e:12:34:56', bridge: 'xenbr0' }],
  };
}

async function failure(promise: Promise<unknown>): Promise<DomainError> {
  try {
    await promise;
  } catch (err) {
    if (isDomainError(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}
