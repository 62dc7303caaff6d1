import {
  type Clock,
  DomainError,
  HostService,
  runHostSyncLoop,
  silentLogger,
  syncHostsOnce,
  type XenHost,
  type XenHostFactory,
} from '@norm/core';
import { HostRepository, PgInventoryUnitOfWork, PgLeaderLock } from '@norm/inventory';
import { describe, expect, it } from 'vitest';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { aHost, anObservation, insertInstance } from './builders';

const db = useTestDatabase();
const flags = { running: false, blocked: true, paused: false, shutdown: false, dying: false };

/** Hosts as mutable state: domains come and go, a host can go down. Stands in for the simulator's xl. */
class FakeFleet implements XenHostFactory {
  readonly domains = new Map<string, Array<{ name: string; memoryMb: number }>>();
  readonly down = new Set<string>();
  forHost(endpoint: { name: string }): XenHost {
    const name = endpoint.name;
    const answer = <T>(f: () => T): Promise<T> =>
      this.down.has(name)
        ? Promise.reject(new DomainError('HostUnreachable', 'host unreachable', { host: name }))
        : Promise.resolve(f());
    const doms = () => this.domains.get(name) ?? [];
    return {
      hostName: name,
      info: () =>
        answer(() => ({
          host: name,
          nrCpus: 8,
          virtCaps: [],
          totalMemoryMb: 32_768,
          freeMemoryMb: 30_000 - doms().reduce((s, d) => s + d.memoryMb, 0),
          xenMajor: 4,
          xenMinor: 17,
          xenExtra: '.3',
          xenVersion: '4.17.3',
          raw: {},
        })),
      listDomains: () =>
        answer(() =>
          doms().map((d, i) => ({
            name: d.name,
            domid: i + 1,
            memoryMb: d.memoryMb,
            vcpus: 1,
            state: '-b----',
            flags,
            cpuTimeS: 1,
          })),
        ),
      listDomainDetails: () =>
        answer(() => doms().map((d, i) => ({ domid: i + 1, name: d.name, disks: [], nics: [] }))),
      volumeGroups: () => answer(() => [{ name: 'vg0', sizeMb: 100_000, freeMb: 80_000 }]),
    } as unknown as XenHost;
  }
  readFingerprint = () => Promise.resolve('');
  close = () => Promise.resolve();
}

const clock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(resolve, ms);
      signal?.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new Error('aborted'));
      });
    }),
};

describe('host sync on Postgres', () => {
  it('follows domains coming and going, a host going down and back, and drift of every kind', async () => {
    const repo = new HostRepository(db.dataSource.manager);
    const a = await repo.create(aHost({ name: 'sync-a' }), anObservation(), new Date());
    const b = await repo.create(aHost({ name: 'sync-b' }), anObservation(), new Date());
    const fleet = new FakeFleet();
    const deps = { hosts: repo, xen: fleet, clock, log: silentLogger };
    const opts = { concurrency: 4, unreachableAfter: 2 };
    const hosts = new HostService({
      uow: new PgInventoryUnitOfWork(db.dataSource),
      xen: fleet,
      clock,
      log: silentLogger,
    });

    fleet.domains.set('sync-a', [{ name: 'norm-web-1', memoryMb: 2048 }]);
    await syncHostsOnce(deps, opts);
    expect(await repo.get(a.id)).toMatchObject({
      freeMemoryMb: 27_952,
      observedDomains: [{ name: 'norm-web-1' }],
    });

    fleet.domains.set('sync-a', [
      { name: 'norm-web-1', memoryMb: 2048 },
      { name: 'norm-web-2', memoryMb: 4096 },
    ]);
    await syncHostsOnce(deps, opts);
    expect((await repo.get(a.id))?.freeMemoryMb).toBe(23_856);
    fleet.domains.set('sync-a', [{ name: 'norm-web-2', memoryMb: 4096 }]);
    await syncHostsOnce(deps, opts);
    expect((await repo.get(a.id))?.observedDomains.map((d) => d.name)).toEqual(['norm-web-2']);

    // Drift: web-1 vanished, web-2 is an orphan (Norm has no instance), db-1 runs on the wrong host.
    await insertInstance(db.dataSource, { hostId: a.id, domainName: 'norm-web-1' });
    await insertInstance(db.dataSource, { hostId: a.id, domainName: 'norm-db-1' });
    fleet.domains.set('sync-b', [{ name: 'norm-db-1', memoryMb: 1024 }]);
    await syncHostsOnce(deps, opts);
    const report = await hosts.drift();
    const kinds = report.entries
      .map((e) => `${e.kind}:${e.kind === 'orphan_domain' ? e.domain.name : e.domainName}`)
      .sort();
    expect(kinds).toEqual([
      'orphan_domain:norm-web-2',
      'vanished_instance:norm-web-1',
      'wrong_host:norm-db-1',
    ]);
    // Report-only: the host still lists every domain it had.
    expect(fleet.domains.get('sync-a')).toHaveLength(1);

    fleet.down.add('sync-b');
    await syncHostsOnce(deps, opts);
    expect((await repo.get(b.id))?.status).toBe('online');
    await syncHostsOnce(deps, opts);
    expect(await repo.get(b.id)).toMatchObject({ status: 'unreachable', consecutiveSyncFailures: 2 });
    // An unreachable host gives no evidence, so nothing is reported as seen on it.
    expect((await hosts.drift()).entries.some((e) => e.kind === 'wrong_host')).toBe(false);
    fleet.down.delete('sync-b');
    await syncHostsOnce(deps, opts);
    expect(await repo.get(b.id)).toMatchObject({ status: 'online', consecutiveSyncFailures: 0 });
    const audit: Array<{ action: string }> = await db.dataSource.query(`SELECT "action" FROM "audit_events"`);
    expect(audit).toEqual([]); // syncHostsOnce without an audit sink; the worker wires one.
  });

  it('runs one loop across two replicas and hands over when the leader stops', async () => {
    const repo = new HostRepository(db.dataSource.manager);
    const fleet = new FakeFleet();
    const lock = () =>
      new PgLeaderLock({
        databaseUrl: db.url,
        name: `${db.name}:sync`,
        checkIntervalMs: 50,
        logger: silentLogger,
      });
    let leaderPasses = 0;
    const counting = (label: string) => ({
      ...fleet,
      forHost: (e: { name: string }) => {
        if (label === 'one') leaderPasses++;
        return fleet.forHost(e);
      },
      readFingerprint: fleet.readFingerprint,
      close: fleet.close,
    });
    const opts = { intervalMs: 100, concurrency: 4, unreachableAfter: 3 };
    const stop1 = new AbortController();
    const stop2 = new AbortController();
    const one = runHostSyncLoop(
      { hosts: repo, xen: counting('one'), lock: lock(), clock, log: silentLogger },
      opts,
      stop1.signal,
    );
    await expectEventually(() => expect(leaderPasses).toBeGreaterThan(0));
    let secondPasses = 0;
    const two = runHostSyncLoop(
      {
        hosts: repo,
        xen: { ...counting('two'), forHost: (e) => (secondPasses++, fleet.forHost(e)) },
        lock: lock(),
        clock,
        log: silentLogger,
      },
      opts,
      stop2.signal,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(secondPasses).toBe(0);
    stop1.abort();
    await one;
    await expectEventually(() => expect(secondPasses).toBeGreaterThan(0), { timeoutMs: 2000 });
    stop2.abort();
    expect((await two).reason).toBe('aborted');
  });
});
