import { describe, expect, it } from 'vitest';
import { DomainError } from '../errors';
import { type Clock, silentLogger, type XenHost, type XenHostFactory } from '../ports';
import {
  type HostObservation,
  type HostRecord,
  type HostStatus,
  type HostSyncStore,
  type HostSyncSuccess,
} from './host.port';
import { runHostSyncLoop, syncHostsOnce } from './host-sync.loop';
import { type LeaderLease, type LeaderLock } from './leader-lock.port';

function record(name: string, status: HostStatus = 'online'): HostRecord {
  return {
    id: `id-${name}`,
    name,
    address: '10.0.0.1',
    port: 22,
    sshUser: 'norm',
    sudo: true,
    hostKeyFingerprint: 'SHA256:x',
    labels: {},
    status,
    maintenance: false,
    placementBlockedReason: null,
    consecutiveSyncFailures: 0,
    limits: {},
    totalMemoryMb: null,
    freeMemoryMb: null,
    nrCpus: null,
    xenVersion: null,
    storageTotalMb: null,
    storageFreeMb: null,
    volumeGroups: [],
    observedDomains: [],
    lastSyncAt: null,
    lastSyncError: null,
    createdAt: new Date(0),
    updatedAt: new Date(0),
  };
}

class MemoryStore implements HostSyncStore {
  readonly observations = new Map<string, HostObservation>();
  readonly batches: number[] = [];
  failWrites = false;
  constructor(readonly hosts: HostRecord[]) {}
  listForSync(): Promise<HostRecord[]> {
    return Promise.resolve(this.hosts.map((h) => ({ ...h })));
  }
  async recordSyncSuccesses(batch: readonly HostSyncSuccess[]): Promise<void> {
    // A round trip, so observations arriving meanwhile have to wait for the next write.
    await new Promise((r) => setTimeout(r, 5));
    if (this.failWrites) throw new Error('database down');
    this.batches.push(batch.length);
    for (const { hostId, observation: o } of batch) {
      const h = this.hosts.find((x) => x.id === hostId)!;
      Object.assign(h, { status: 'online', consecutiveSyncFailures: 0, freeMemoryMb: o.freeMemoryMb });
      this.observations.set(hostId, o);
    }
  }
  recordSyncFailure(hostId: string, error: string, _at: Date, after: number) {
    const h = this.hosts.find((x) => x.id === hostId)!;
    h.consecutiveSyncFailures++;
    h.lastSyncError = error;
    if (h.consecutiveSyncFailures >= after) h.status = 'unreachable';
    return Promise.resolve({ status: h.status, consecutiveFailures: h.consecutiveSyncFailures });
  }
}

function fakeXen(down: Set<string>, inFlight?: { now: number; max: number }): XenHostFactory {
  const host = (name: string): XenHost => {
    const guard = async <T>(value: T): Promise<T> => {
      if (inFlight) {
        inFlight.now++;
        inFlight.max = Math.max(inFlight.max, inFlight.now);
        await new Promise((r) => setTimeout(r, 2));
        inFlight.now--;
      }
      if (down.has(name)) throw new DomainError('HostUnreachable', 'host unreachable', { host: name });
      return value;
    };
    return {
      hostName: name,
      info: () =>
        guard({
          host: name,
          nrCpus: 8,
          virtCaps: [],
          totalMemoryMb: 32_768,
          freeMemoryMb: 8000,
          xenMajor: 4,
          xenMinor: 17,
          xenExtra: '.3',
          xenVersion: '4.17.3',
          raw: {},
        }),
      listDomains: () =>
        guard([
          {
            name: 'Domain-0',
            domid: 0,
            memoryMb: 2048,
            vcpus: 8,
            state: 'r-----',
            flags: { running: true, blocked: false, paused: false, shutdown: false, dying: false },
            cpuTimeS: 1,
          },
          {
            name: 'vm1',
            domid: 4,
            memoryMb: 1024,
            vcpus: 2,
            state: '-b----',
            flags: { running: false, blocked: true, paused: false, shutdown: false, dying: false },
            cpuTimeS: 1,
          },
        ]),
      listDomainDetails: () =>
        guard([{ domid: 4, name: 'vm1', uuid: 'u-1', disks: [], nics: [{ mac: '00:16:3e:00:00:01' }] }]),
      volumeGroups: () =>
        guard([
          { name: 'vg0', sizeMb: 100_000, freeMb: 40_000 },
          { name: 'vg1', sizeMb: 50_000, freeMb: 45_000 },
        ]),
    } as unknown as XenHost;
  };
  return {
    forHost: (e) => host(e.name),
    readFingerprint: () => Promise.resolve(''),
    close: () => Promise.resolve(),
  };
}

/** Sleeps resolve on the next tick, so a loop runs many intervals in milliseconds. */
const fastClock: Clock = {
  now: () => new Date('2026-01-01T00:00:00Z'),
  sleep: (_ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new Error('aborted'));
      setImmediate(resolve);
    }),
};

describe('syncHostsOnce', () => {
  it('writes observations that arrive during a write together, and every host exactly once', async () => {
    const store = new MemoryStore(Array.from({ length: 40 }, (_, i) => record(`h${i}`, 'unknown')));
    const pass = await syncHostsOnce(
      { hosts: store, xen: fakeXen(new Set()), clock: fastClock, log: silentLogger },
      { concurrency: 40, unreachableAfter: 3 },
    );
    expect(pass).toMatchObject({ hosts: 40, succeeded: 40, failed: 0 });
    expect(pass.becameOnline).toHaveLength(40);
    expect(store.batches.reduce((a, b) => a + b, 0)).toBe(40);
    // Forty hosts answering at once need far fewer statements than hosts.
    expect(store.batches.length).toBeLessThan(5);
  });

  it('counts a host whose observation could not be stored as failed and leaves its status alone', async () => {
    const store = new MemoryStore([record('a', 'unreachable')]);
    store.failWrites = true;
    const audits: unknown[] = [];
    const pass = await syncHostsOnce(
      {
        hosts: store,
        xen: fakeXen(new Set()),
        clock: fastClock,
        log: silentLogger,
        audit: (e) => Promise.resolve(audits.push(e)),
      },
      { concurrency: 1, unreachableAfter: 3 },
    );
    expect(pass).toMatchObject({ succeeded: 0, failed: 1, becameOnline: [] });
    expect(store.hosts[0]?.status).toBe('unreachable');
    expect(audits).toEqual([]);
  });

  it('records capacity and domains, counting failures per host without stopping the others', async () => {
    const store = new MemoryStore([record('a'), record('b')]);
    const pass = await syncHostsOnce(
      { hosts: store, xen: fakeXen(new Set(['b'])), clock: fastClock, log: silentLogger },
      { concurrency: 4, unreachableAfter: 2 },
    );
    expect(pass).toMatchObject({ hosts: 2, succeeded: 1, failed: 1, becameUnreachable: [] });
    const o = store.observations.get('id-a');
    expect(o).toMatchObject({
      freeMemoryMb: 8000,
      nrCpus: 8,
      storageTotalMb: 150_000,
      storageFreeMb: 45_000,
    });
    expect(o?.domains).toEqual([
      {
        name: 'vm1',
        domid: 4,
        memoryMb: 1024,
        vcpus: 2,
        state: '-b----',
        macs: ['00:16:3e:00:00:01'],
        dying: false,
        uuid: 'u-1',
      },
    ]);
    expect(store.hosts[1]?.lastSyncError).toContain('HostUnreachable');
  });

  it('marks a host unreachable after N failures and online again, auditing both changes', async () => {
    const down = new Set(['a']);
    const store = new MemoryStore([record('a')]);
    const audits: string[] = [];
    const deps = {
      hosts: store,
      xen: fakeXen(down),
      clock: fastClock,
      log: silentLogger,
      audit: (e: { after?: Record<string, unknown> | null }) => {
        audits.push(String(e.after?.status));
        return Promise.resolve();
      },
    };
    const opts = { concurrency: 1, unreachableAfter: 3 };
    await syncHostsOnce(deps, opts);
    await syncHostsOnce(deps, opts);
    expect(store.hosts[0]?.status).toBe('online');
    expect((await syncHostsOnce(deps, opts)).becameUnreachable).toEqual(['a']);
    down.clear();
    expect((await syncHostsOnce(deps, opts)).becameOnline).toEqual(['a']);
    expect(audits).toEqual(['unreachable', 'online']);
  });

  it('never has more hosts in flight than the concurrency bound', async () => {
    const inFlight = { now: 0, max: 0 };
    const store = new MemoryStore(Array.from({ length: 20 }, (_, i) => record(`h${i}`)));
    await syncHostsOnce(
      { hosts: store, xen: fakeXen(new Set(), inFlight), clock: fastClock, log: silentLogger },
      { concurrency: 3, unreachableAfter: 3 },
    );
    // Four commands per host run together, so 3 hosts mean at most 12 commands.
    expect(inFlight.max).toBeLessThanOrEqual(12);
    expect(inFlight.max).toBeGreaterThan(4);
  });
});

class FakeLock implements LeaderLock {
  holder: AbortController | null = null;
  attempts = 0;
  tryAcquire(): Promise<LeaderLease | null> {
    this.attempts++;
    if (this.holder) return Promise.resolve(null);
    const lost = new AbortController();
    this.holder = lost;
    return Promise.resolve({
      lost: lost.signal,
      release: () => {
        if (this.holder === lost) this.holder = null;
        return Promise.resolve();
      },
    });
  }
}

describe('runHostSyncLoop', () => {
  it('runs only in the replica holding the lock, hands over when it is lost, and says why it stopped', async () => {
    const lock = new FakeLock();
    const storeA = new MemoryStore([record('a')]);
    const storeB = new MemoryStore([record('a')]);
    const stopA = new AbortController();
    const stopB = new AbortController();
    const deps = (store: MemoryStore) => ({
      hosts: store,
      xen: fakeXen(new Set()),
      lock,
      clock: fastClock,
      log: silentLogger,
    });
    const opts = { intervalMs: 1000, concurrency: 2, unreachableAfter: 3 };
    const a = runHostSyncLoop(deps(storeA), opts, stopA.signal);
    const b = runHostSyncLoop(deps(storeB), opts, stopB.signal);
    await new Promise((r) => setTimeout(r, 20));
    expect(storeA.observations.size).toBe(1);
    expect(storeB.observations.size).toBe(0);
    // The leader's connection dies: the standby takes over on its next try.
    stopA.abort();
    lock.holder?.abort(new Error('connection lost'));
    const stoppedA = await a;
    expect(stoppedA.reason).toBe('aborted');
    expect(stoppedA.passes).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(storeB.observations.size).toBe(1);
    stopB.abort();
    expect((await b).reason).toBe('aborted');
    expect(lock.holder).toBeNull();
  });

  it('a standby tries the lock five times per interval, the leader syncs once per interval', async () => {
    const lock = new FakeLock();
    const slept: Array<{ ms: number; leading: boolean }> = [];
    let leading = false;
    const clock: Clock = {
      now: () => fastClock.now(),
      sleep: (ms, signal) => {
        slept.push({ ms, leading });
        return fastClock.sleep(ms, signal);
      },
    };
    // Another replica holds the lock.
    const other = await lock.tryAcquire();
    const stop = new AbortController();
    const deps = {
      hosts: new MemoryStore([record('a')]),
      xen: fakeXen(new Set()),
      lock: {
        tryAcquire: async () => {
          const lease = await lock.tryAcquire();
          leading = lease !== null;
          return lease;
        },
      },
      clock,
      log: silentLogger,
    };
    const loop = runHostSyncLoop(
      deps,
      { intervalMs: 30_000, concurrency: 1, unreachableAfter: 3 },
      stop.signal,
    );
    await new Promise((r) => setTimeout(r, 20));
    await other?.release();
    await new Promise((r) => setTimeout(r, 20));
    stop.abort();
    await loop;
    expect(slept.filter((s) => !s.leading).map((s) => s.ms)).toContain(6_000);
    expect(slept.filter((s) => !s.leading).every((s) => s.ms === 6_000)).toBe(true);
    expect(slept.filter((s) => s.leading).every((s) => s.ms === 30_000)).toBe(true);
    expect(slept.some((s) => s.leading)).toBe(true);
  });
});
