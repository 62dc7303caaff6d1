import { describe, expect, it } from 'vitest';
import { type AuditEventInput } from '../audit';
import { DomainError } from '../errors';
import { type LeaderLease, type LeaderLock } from '../inventory/leader-lock.port';
import { type Clock, type DomainSummary, silentLogger, type XenHost, type XenHostFactory } from '../ports';
import { type ReaperCandidate } from './reaper.decide';
import {
  DEFAULT_REAPER_OPTIONS,
  Reaper,
  type ReaperOptions,
  reaperOptionsFromConfig,
  runReaperLoop,
} from './reaper.loop';
import { loadConfig } from '../config/config';
import {
  type ReaperActions,
  type ReaperActOutcome,
  type ReaperHostRecord,
  type ReaperStore,
} from './reaper.port';

const S = 1000;
const MIN = 60 * S;
const TIMEOUT = 180 * S;

class FakeClock implements Clock {
  t = Date.parse('2026-01-01T00:00:00Z');
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
  sleep(_ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new Error('aborted'));
      setImmediate(resolve);
    });
  }
}

interface Inst {
  id: string;
  hostId: string;
  cls: 'cattle' | 'pet';
  state: 'running' | 'stopped' | 'decommissioning';
  lastBeat: number;
  deadline: number;
  quarantinedAt: number | null;
  /** Its own heartbeat timeout, if it has one. */
  timeoutS?: number;
}

interface Host {
  id: string;
  status: 'online' | 'unreachable';
  maintenance: boolean;
  down: boolean;
  domains: Map<string, 'running' | 'crashed'>;
}

/** Instances, hosts and their domains, with the store, actions and Xen all reading the same state. */
class World implements ReaperActions {
  readonly instances = new Map<string, Inst>();
  readonly hosts = new Map<string, Host>();
  readonly effects: string[] = [];
  readonly audit: AuditEventInput[] = [];
  failNextDecommission = false;

  constructor(readonly clock: FakeClock) {}

  host(id: string, opts: Partial<Host> = {}): void {
    this.hosts.set(id, {
      id,
      status: 'online',
      maintenance: false,
      down: false,
      domains: new Map(),
      ...opts,
    });
  }

  add(id: string, hostId: string, cls: 'cattle' | 'pet' = 'cattle'): void {
    const t = this.clock.t;
    this.instances.set(id, {
      id,
      hostId,
      cls,
      state: 'running',
      lastBeat: t,
      deadline: t + TIMEOUT,
      quarantinedAt: null,
    });
    this.hosts.get(hostId)!.domains.set(id, 'running');
  }

  beat(id: string): void {
    const i = this.instances.get(id)!;
    i.lastBeat = this.clock.t;
    i.deadline = this.clock.t + TIMEOUT;
  }

  beatAllExcept(...silent: string[]): void {
    for (const i of this.instances.values())
      if (i.state !== 'decommissioning' && !silent.includes(i.id)) this.beat(i.id);
  }

  private live(): Inst[] {
    return [...this.instances.values()].filter((i) => i.state === 'running');
  }

  // ReaperStore
  listCandidates(now: Date, limit: number): Promise<ReaperCandidate[]> {
    const t = now.getTime();
    return Promise.resolve(
      [...this.instances.values()]
        .filter(
          (i) =>
            (i.state === 'running' && i.deadline <= t) || (i.state === 'stopped' && i.quarantinedAt !== null),
        )
        .slice(0, limit)
        .map((i) => ({
          instanceId: i.id,
          name: i.id,
          hostId: i.hostId,
          domainName: i.id,
          lifecycleClass: i.cls,
          lastHeartbeatAt: new Date(i.lastBeat),
          deadlineAt: new Date(i.deadline),
          quarantinedAt: i.quarantinedAt === null ? null : new Date(i.quarantinedAt),
          timeoutS: i.timeoutS ?? TIMEOUT / 1000,
        })),
    );
  }
  fleetCounts(now: Date, since: Date) {
    const cattle = this.live().filter((i) => i.cls === 'cattle');
    return Promise.resolve({
      liveCattle: cattle.length,
      silentCattle: cattle.filter((i) => i.deadline <= now.getTime()).length,
      intakeRecent: this.live().filter((i) => i.lastBeat >= since.getTime()).length,
    });
  }
  hosts_(ids: readonly string[], now: Date): ReaperHostRecord[] {
    return ids.map((id) => {
      const h = this.hosts.get(id)!;
      const cattle = this.live().filter((i) => i.hostId === id && i.cls === 'cattle');
      return {
        id,
        name: id,
        status: h.status,
        maintenance: h.maintenance,
        endpoint: {
          name: id,
          address: '10.0.0.1',
          port: 22,
          user: 'norm',
          hostKeyFingerprint: 'SHA256:x',
          sudo: true,
        },
        liveCattle: cattle.length,
        silentCattle: cattle.filter((i) => i.deadline <= now.getTime()).length,
      };
    });
  }
  resetDeadlines(now: Date): Promise<number> {
    let n = 0;
    for (const i of this.live()) {
      i.deadline = now.getTime() + TIMEOUT;
      n++;
    }
    return Promise.resolve(n);
  }

  // ReaperActions
  // ReaperActions: each effect and its decision record land together, like one transaction.
  quarantine(
    c: ReaperCandidate,
    _h: ReaperHostRecord,
    at: Date,
    decision: AuditEventInput,
  ): Promise<ReaperActOutcome> {
    const i = this.instances.get(c.instanceId)!;
    this.effects.push(`quarantine:${i.id}`);
    this.audit.push(decision);
    this.hosts.get(i.hostId)!.domains.delete(i.id);
    i.state = 'stopped';
    i.quarantinedAt = at.getTime();
    return Promise.resolve('acted');
  }
  revive(
    c: ReaperCandidate,
    _h: ReaperHostRecord | undefined,
    at: Date,
    decision: AuditEventInput,
  ): Promise<ReaperActOutcome> {
    const i = this.instances.get(c.instanceId)!;
    this.effects.push(`revive:${i.id}`);
    this.audit.push(decision);
    this.hosts.get(i.hostId)!.domains.set(i.id, 'running');
    i.state = 'running';
    i.quarantinedAt = null;
    i.deadline = at.getTime() + TIMEOUT;
    return Promise.resolve('acted');
  }
  decommission(
    c: ReaperCandidate,
    _reason: string,
    _at: Date,
    decision: AuditEventInput,
  ): Promise<ReaperActOutcome> {
    if (this.failNextDecommission) {
      this.failNextDecommission = false;
      return Promise.reject(new Error('worker killed'));
    }
    const i = this.instances.get(c.instanceId)!;
    if (i.state === 'decommissioning') throw new Error(`duplicate decommission of ${i.id}`);
    this.effects.push(`decommission:${i.id}`);
    this.audit.push(decision);
    this.hosts.get(i.hostId)!.domains.delete(i.id);
    i.state = 'decommissioning';
    return Promise.resolve('acted');
  }

  xen(): XenHostFactory {
    const forHost = (e: { name: string }): XenHost => {
      const h = this.hosts.get(e.name)!;
      const listDomains = (): Promise<DomainSummary[]> => {
        if (h.down)
          return Promise.reject(new DomainError('HostUnreachable', 'host unreachable', { host: h.id }));
        return Promise.resolve(
          [...h.domains].map(([name, s], domid) => ({
            name,
            domid: domid + 1,
            memoryMb: 1024,
            vcpus: 1,
            state: s === 'running' ? '-b----' : '---sc-',
            flags: {
              running: false,
              blocked: s === 'running',
              paused: false,
              shutdown: s === 'crashed',
              shutdownReason: s === 'crashed' ? ('crash' as const) : undefined,
              dying: false,
            },
            cpuTimeS: 1,
          })),
        );
      };
      return { hostName: h.id, listDomains } as unknown as XenHost;
    };
    return { forHost, readFingerprint: () => Promise.resolve(''), close: () => Promise.resolve() };
  }

  store(): ReaperStore {
    return {
      listCandidates: (n, l) => this.listCandidates(n, l),
      fleetCounts: (n, s) => this.fleetCounts(n, s),
      hosts: (ids, n) => Promise.resolve(this.hosts_(ids, n)),
      resetDeadlines: (n) => this.resetDeadlines(n),
    };
  }

  reaper(options: Partial<ReaperOptions> = {}): Reaper {
    return new Reaper(
      {
        store: this.store(),
        actions: this,
        xen: this.xen(),
        clock: this.clock,
        log: silentLogger,
        audit: (e) => {
          this.audit.push(e);
          return Promise.resolve();
        },
      },
      { ...DEFAULT_REAPER_OPTIONS, ...options },
    );
  }
}

/** A world of `n` cattle spread over hosts h1..hN, the reaper already past its startup grace. */
function setup(perHost: number[], options: Partial<ReaperOptions> = {}) {
  const clock = new FakeClock();
  const world = new World(clock);
  perHost.forEach((count, h) => {
    world.host(`h${h + 1}`);
    for (let k = 0; k < count; k++) world.add(`h${h + 1}-vm${k}`, `h${h + 1}`);
  });
  const reaper = world.reaper(options);
  return { clock, world, reaper };
}

/** Runs cycles every 10 s for `ms`, with everyone but `silent` beating. */
async function live(
  ctx: ReturnType<typeof setup>,
  ms: number,
  silent: string[] = [],
  beats = true,
): Promise<void> {
  for (let t = 0; t < ms; t += 10 * S) {
    ctx.clock.advance(10 * S);
    if (beats) ctx.world.beatAllExcept(...silent);
    await ctx.reaper.runCycle();
  }
}

describe('reaper', () => {
  it('one silent cattle (domain crashed): quarantined, then decommissioned exactly once', async () => {
    const ctx = setup([4, 4]);
    await live(ctx, 4 * MIN); // past the startup grace
    ctx.world.hosts.get('h1')!.domains.set('h1-vm0', 'crashed');
    await live(ctx, 4 * MIN, ['h1-vm0']);
    expect(ctx.world.effects).toEqual(['quarantine:h1-vm0']);
    await live(ctx, 20 * MIN, ['h1-vm0']);
    expect(ctx.world.effects).toEqual(['quarantine:h1-vm0', 'decommission:h1-vm0']);
    const acts = ctx.world.audit.filter((e) => e.action === 'lifecycle.reap.act');
    expect(acts.map((e) => e.reason)).toEqual([
      'heartbeat missing and xl list shows the domain crashed',
      'silent through a 900000 ms quarantine',
    ]);
    expect(acts[0]!.after).toMatchObject({
      signals: { domain: 'crashed' },
      thresholds: { mode: 'two-phase' },
    });
  });

  it('direct mode destroys without a quarantine; a running domain waits out the silent grace', async () => {
    const ctx = setup([4], { mode: 'direct' });
    await live(ctx, 4 * MIN);
    await live(ctx, 3 * MIN + 30 * S, ['h1-vm1']); // overdue but running: still within the grace
    expect(ctx.world.effects).toEqual([]);
    await live(ctx, 5 * MIN, ['h1-vm1']);
    expect(ctx.world.effects).toEqual(['decommission:h1-vm1']);
  });

  it('dry-run decides and records but never acts', async () => {
    const ctx = setup([4], { mode: 'dry-run' });
    await live(ctx, 4 * MIN);
    ctx.world.hosts.get('h1')!.domains.delete('h1-vm0');
    await live(ctx, 30 * MIN, ['h1-vm0']);
    expect(ctx.world.effects).toEqual([]);
    const held = ctx.world.audit.filter((e) => e.action === 'lifecycle.reap.hold');
    expect(held).toHaveLength(1); // audited once, not once per cycle
    expect(held[0]!.after).toMatchObject({ outcome: 'hold:dry-run:quarantine', signals: { domain: 'gone' } });
  });

  it('startup grace: nothing acts before one timeout after the reaper starts', async () => {
    const ctx = setup([4], { mode: 'direct', startupGraceMs: 0 }); // raised to the timeout
    // The instances were silent while Norm was down: every deadline is long past at start.
    for (const i of ctx.world.instances.values()) i.deadline = ctx.clock.t - 10 * MIN;
    ctx.world.hosts.get('h1')!.domains.clear();
    await live(ctx, 2 * MIN, [], false);
    expect(ctx.world.effects).toEqual([]);
    expect(
      ctx.world.audit.some((e) => (e.after as { outcome?: string }).outcome === 'hold:startup-grace:destroy'),
    ).toBe(true);
  });

  it("startup grace lasts at least each instance's own timeout", async () => {
    const ctx = setup([4], { mode: 'direct', startupGraceMs: 0 });
    const long = ctx.world.instances.get('h1-vm0')!;
    long.timeoutS = 600;
    // Both silent through the restart, their domains gone: only the class-timeout one is judged at 3 min.
    for (const i of [long, ctx.world.instances.get('h1-vm1')!]) {
      i.deadline = ctx.clock.t - MIN;
      ctx.world.hosts.get('h1')!.domains.delete(i.id);
    }
    await live(ctx, 4 * MIN, ['h1-vm0', 'h1-vm1']);
    expect(ctx.world.effects).toEqual(['decommission:h1-vm1']);
    const held = ctx.world.audit.filter((e) => e.objectId === 'h1-vm0').map((e) => e.after);
    expect(held).toEqual([expect.objectContaining({ outcome: 'hold:startup-grace:destroy' })]);
    await live(ctx, 7 * MIN, ['h1-vm0']);
    expect(ctx.world.effects).toEqual(['decommission:h1-vm1', 'decommission:h1-vm0']);
  });

  it('heartbeat endpoint down for 10 minutes: nothing destroyed, breaker open, heals with nothing destroyed', async () => {
    const ctx = setup([5, 5, 5], { mode: 'direct', aliveSilentGraceMs: 0 });
    await live(ctx, 4 * MIN);
    await live(ctx, 10 * MIN, [], false); // nobody's beats arrive
    expect(ctx.world.effects).toEqual([]);
    expect(ctx.reaper.memory.breaker?.reason).toMatch(/^fleet-share|^intake-drop/);
    expect(ctx.world.audit.some((e) => e.action === 'lifecycle.breaker.open')).toBe(true);
    await live(ctx, 5 * MIN); // the endpoint is back
    expect(ctx.reaper.memory.breaker).toBeNull();
    expect(ctx.world.audit.some((e) => e.action === 'lifecycle.breaker.recover')).toBe(true);
    await live(ctx, 10 * MIN);
    expect(ctx.world.effects).toEqual([]);
  });

  it('a sharp drop in heartbeat intake alone opens the breaker', async () => {
    const ctx = setup([10, 10], { fleetShare: { max: 0.99, minSilent: 1000 } });
    await live(ctx, 4 * MIN);
    // 60% of beats stop arriving; deadlines are not yet past, so only intake shows it.
    const silent = [...ctx.world.instances.keys()].slice(0, 12);
    await live(ctx, 70 * S, silent);
    expect(ctx.reaper.memory.breaker?.reason).toMatch(/^intake-drop/);
  });

  it('an operator reset closes the breaker and restarts every clock', async () => {
    const ctx = setup([5, 5], { mode: 'direct', aliveSilentGraceMs: 0 });
    await live(ctx, 4 * MIN);
    await live(ctx, 5 * MIN, [], false);
    expect(ctx.reaper.memory.breaker).not.toBeNull();
    await ctx.reaper.resetBreaker('principal-1');
    expect(ctx.reaper.memory.breaker).toBeNull();
    expect([...ctx.world.instances.values()].every((i) => i.deadline > ctx.clock.t)).toBe(true);
    expect(ctx.world.audit.at(-1)).toMatchObject({ action: 'lifecycle.breaker.reset', actor: 'principal-1' });
  });

  it('60% of one host silent: that host frozen and flagged, other hosts still reaped', async () => {
    const ctx = setup([5, 5, 5, 5], { mode: 'direct', aliveSilentGraceMs: 0 });
    await live(ctx, 4 * MIN);
    const silent = ['h1-vm0', 'h1-vm1', 'h1-vm2', 'h2-vm0'];
    await live(ctx, 4 * MIN, silent);
    expect(ctx.world.effects).toEqual(['decommission:h2-vm0']);
    expect(ctx.reaper.lastCycle?.frozenHosts).toEqual(['h1']);
    expect(ctx.world.audit.find((e) => e.action === 'lifecycle.host.alert')).toMatchObject({
      objectId: 'h1',
      after: { alert: 'host-frozen', silent: 3, live: 5 },
    });
  });

  it('host unreachable or in maintenance: nothing destroyed, a host alert instead', async () => {
    const ctx = setup([3, 3], { mode: 'direct', aliveSilentGraceMs: 0 });
    await live(ctx, 4 * MIN);
    ctx.world.hosts.get('h1')!.down = true; // xl list fails
    ctx.world.hosts.get('h2')!.maintenance = true;
    await live(ctx, 30 * MIN, ['h1-vm0', 'h2-vm0']);
    expect(ctx.world.effects).toEqual([]);
    const alerts = ctx.world.audit.filter((e) => e.action === 'lifecycle.host.alert').map((e) => e.after);
    expect(alerts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ alert: 'host-unreachable' }),
        expect.objectContaining({ alert: 'host-maintenance' }),
      ]),
    );
    ctx.world.hosts.get('h1')!.status = 'unreachable';
    ctx.world.hosts.get('h1')!.down = false;
    await live(ctx, 5 * MIN, ['h1-vm0', 'h2-vm0']);
    expect(ctx.world.effects).toEqual([]);
  });

  it('a heartbeat during quarantine revives the instance', async () => {
    const ctx = setup([4]);
    await live(ctx, 4 * MIN);
    ctx.world.hosts.get('h1')!.domains.delete('h1-vm0');
    await live(ctx, 4 * MIN, ['h1-vm0']);
    expect(ctx.world.effects).toEqual(['quarantine:h1-vm0']);
    ctx.clock.advance(S);
    ctx.world.instances.get('h1-vm0')!.lastBeat = ctx.clock.t; // a late beat arrives
    await live(ctx, 30 * MIN);
    expect(ctx.world.effects).toEqual(['quarantine:h1-vm0', 'revive:h1-vm0']);
    expect(ctx.world.instances.get('h1-vm0')!.state).toBe('running');
  });

  it('a pet is never destroyed, only alerted on', async () => {
    const ctx = setup([3], { mode: 'direct', aliveSilentGraceMs: 0 });
    ctx.world.add('pet', 'h1', 'pet');
    ctx.world.hosts.get('h1')!.domains.delete('pet');
    await live(ctx, 60 * MIN, ['pet']);
    expect(ctx.world.effects).toEqual([]);
    expect(ctx.world.audit.filter((e) => e.action === 'lifecycle.reap.alert')).toHaveLength(1);
  });

  it('per-cycle cap and rolling rate limit hold the rest back', async () => {
    const ctx = setup([10, 10, 10, 10, 10], {
      mode: 'direct',
      aliveSilentGraceMs: 0,
      maxPerCycle: 2,
      rateLimit: { max: 3, windowMs: 10 * MIN },
    });
    await live(ctx, 4 * MIN);
    const silent = ['h1-vm0', 'h2-vm0', 'h3-vm0', 'h4-vm0', 'h5-vm0'];
    ctx.clock.advance(TIMEOUT + S);
    ctx.world.beatAllExcept(...silent);
    await ctx.reaper.runCycle();
    expect(ctx.world.effects).toHaveLength(2);
    const holds = ctx.world.audit.filter((e) => e.action === 'lifecycle.reap.hold').map((e) => e.after);
    expect(holds).toEqual(Array(3).fill(expect.objectContaining({ outcome: 'hold:cycle-cap:destroy' })));
    await live(ctx, 5 * MIN, silent);
    expect(ctx.world.effects).toHaveLength(3);
    await live(ctx, 10 * MIN, silent);
    expect(ctx.world.effects).toHaveLength(5);
  });

  it('paused: decisions held until resumed', async () => {
    const ctx = setup([4], { mode: 'direct', aliveSilentGraceMs: 0 });
    await live(ctx, 4 * MIN);
    ctx.reaper.pause();
    await live(ctx, 5 * MIN, ['h1-vm0']);
    expect(ctx.world.effects).toEqual([]);
    ctx.reaper.resume();
    await live(ctx, 20 * S, ['h1-vm0']);
    expect(ctx.world.effects).toEqual(['decommission:h1-vm0']);
  });

  it('restart mid-cycle: no duplicate, no missed decision', async () => {
    const ctx = setup([5, 5], { mode: 'direct', aliveSilentGraceMs: 0 });
    await live(ctx, 4 * MIN);
    const silent = ['h1-vm0', 'h2-vm0'];
    ctx.clock.advance(TIMEOUT + S);
    ctx.world.beatAllExcept(...silent);
    // The second action dies with the worker; the first already happened.
    let calls = 0;
    const decommission = ctx.world.decommission.bind(ctx.world);
    ctx.world.decommission = (c, r, at, d) =>
      ++calls === 2 ? Promise.reject(new Error('killed')) : decommission(c, r, at, d);
    await ctx.reaper.runCycle();
    expect(ctx.world.effects).toEqual(['decommission:h1-vm0']);
    ctx.world.decommission = decommission;
    // A new process: a fresh reaper with its own startup grace, reading the durable state.
    const restarted = ctx.world.reaper({ mode: 'direct', aliveSilentGraceMs: 0 });
    await live({ ...ctx, reaper: restarted }, 5 * MIN, silent);
    expect(ctx.world.effects).toEqual(['decommission:h1-vm0', 'decommission:h2-vm0']);
  });

  it('two workers: only the leader reaps', async () => {
    const clock = new FakeClock();
    const world = new World(clock);
    world.host('h1');
    let held = false;
    let acquisitions = 0;
    const lock: LeaderLock = {
      tryAcquire: () => {
        if (held) return Promise.resolve(null);
        held = true;
        acquisitions++;
        const lost = new AbortController();
        const lease: LeaderLease = {
          lost: lost.signal,
          release: () => {
            held = false;
            return Promise.resolve();
          },
        };
        return Promise.resolve(lease);
      },
    };
    const leaders: string[] = [];
    const ac = new AbortController();
    const deps = {
      store: world.store(),
      actions: world,
      xen: world.xen(),
      lock,
      clock,
      log: silentLogger,
      audit: () => Promise.resolve(),
    };
    const loops = ['w1', 'w2'].map((w) =>
      runReaperLoop(deps, DEFAULT_REAPER_OPTIONS, ac.signal, (r) => {
        if (r) leaders.push(w);
      }),
    );
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    const stops = await Promise.all(loops);
    expect(acquisitions).toBe(1);
    expect(leaders).toHaveLength(1);
    expect(stops.map((s) => s.reason)).toEqual(['aborted', 'aborted']);
    expect(stops.reduce((n, s) => n + s.cycles, 0)).toBeGreaterThan(1);
  });
});

describe('reaper brakes from settings', () => {
  it('keeps the safe defaults when nothing is set', () => {
    expect(reaperOptionsFromConfig(loadConfig({}))).toEqual({
      mode: 'two-phase',
      intervalMs: 10_000,
      heartbeatTimeoutMs: 180_000,
      startupGraceMs: 180_000,
      aliveSilentGraceMs: 300_000,
      quarantineMs: 900_000,
      maxPerCycle: 5,
      rateLimit: { max: 20, windowMs: 600_000 },
      hostShare: { max: 0.5, minSilent: 2 },
      fleetShare: { max: 0.3, minSilent: 3 },
      intakeDrop: { drop: 0.5, minBaseline: 10 },
      intakeWindowMs: 60_000,
      maxCandidates: 500,
    });
  });

  it('reads every brake from its NORM_REAPER_* setting', () => {
    const options = reaperOptionsFromConfig(
      loadConfig({
        NORM_REAPER_MODE: 'direct',
        NORM_REAPER_INTERVAL: '1s',
        NORM_HEARTBEAT_TIMEOUT: '4s',
        NORM_REAPER_STARTUP_GRACE: '6s',
        NORM_REAPER_ALIVE_SILENT_GRACE: '2s',
        NORM_REAPER_QUARANTINE: '3s',
        NORM_REAPER_MAX_PER_CYCLE: '7',
        NORM_REAPER_RATE_LIMIT: '40',
        NORM_REAPER_RATE_WINDOW: '1h',
        NORM_REAPER_HOST_SHARE: '0.75',
        NORM_REAPER_HOST_MIN_SILENT: '4',
        NORM_REAPER_FLEET_SHARE: '0.2',
        NORM_REAPER_FLEET_MIN_SILENT: '9',
        NORM_REAPER_INTAKE_DROP: '0.9',
        NORM_REAPER_INTAKE_MIN_BASELINE: '50',
        NORM_REAPER_INTAKE_WINDOW: '2m',
      }),
    );
    expect(options).toEqual({
      mode: 'direct',
      intervalMs: 1_000,
      heartbeatTimeoutMs: 4_000,
      startupGraceMs: 6_000,
      aliveSilentGraceMs: 2_000,
      quarantineMs: 3_000,
      maxPerCycle: 7,
      rateLimit: { max: 40, windowMs: 3_600_000 },
      hostShare: { max: 0.75, minSilent: 4 },
      fleetShare: { max: 0.2, minSilent: 9 },
      intakeDrop: { drop: 0.9, minBaseline: 50 },
      intakeWindowMs: 120_000,
      maxCandidates: 500,
    });
  });

  it('refuses shares outside (0, 1) and a cap of zero, naming each setting', () => {
    let message = '';
    try {
      loadConfig({
        NORM_REAPER_HOST_SHARE: '1',
        NORM_REAPER_FLEET_SHARE: '0',
        NORM_REAPER_INTAKE_DROP: 'half',
        NORM_REAPER_MAX_PER_CYCLE: '0',
        NORM_REAPER_QUARANTINE: 'soon',
      });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('NORM_REAPER_MAX_PER_CYCLE: must be at least 1');
    expect(message).toContain('NORM_REAPER_QUARANTINE: ');
    for (const env of ['NORM_REAPER_HOST_SHARE', 'NORM_REAPER_FLEET_SHARE', 'NORM_REAPER_INTAKE_DROP'])
      expect(message).toContain(`${env}: must be a fraction between 0 and 1, e.g. 0.5`);
  });

  it('a startup grace set below the heartbeat timeout is raised to it', () => {
    const options = reaperOptionsFromConfig(
      loadConfig({ NORM_HEARTBEAT_TIMEOUT: '10s', NORM_REAPER_STARTUP_GRACE: '1s' }),
    );
    const clock = new FakeClock();
    const reaper = new World(clock).reaper(options);
    expect(reaper.status(true).startupGraceUntil).toBe(new Date(clock.t + 10_000).toISOString());
  });
});
