import { type AuditEventInput } from '../audit';
import { loadConfig, type NormConfig } from '../config/config';
import { DomainError } from '../errors';
import { type LeaderLock } from '../inventory/leader-lock.port';
import { type Clock, type DomainSummary, type Logger, type XenHostFactory } from '../ports';
import {
  type BreakerState,
  decideReaping,
  type ReaperCandidate,
  type ReaperDecision,
  type ReaperHostView,
  type ReaperMemory,
  type ReaperPolicy,
  type ReapingPlan,
} from './reaper.decide';
import {
  type ReaperActOutcome,
  type ReaperActions,
  type ReaperControl,
  type ReaperHostRecord,
  type ReaperStatusView,
  type ReaperStore,
} from './reaper.port';

export interface ReaperDeps {
  store: ReaperStore;
  actions: ReaperActions;
  xen: XenHostFactory;
  lock: LeaderLock;
  clock: Clock;
  log: Logger;
  audit: (event: AuditEventInput) => Promise<unknown>;
  /** Operator controls and published status shared across replicas; absent in unit tests. */
  control?: ReaperControl;
  /** Names this worker (host:pid) in the published status, so operators see which one leads. */
  workerId?: string;
}

export interface ReaperOptions extends ReaperPolicy {
  intervalMs: number;
  /** The heartbeat timeout; the startup grace is never shorter. */
  heartbeatTimeoutMs: number;
  /** Window over which heartbeat intake is counted for the intake-drop signal. */
  intakeWindowMs: number;
  /** Candidates read per cycle; the cycle cap acts on far fewer. */
  maxCandidates: number;
}

/**
 * The reaper's thresholds from the typed settings (NORM_REAPER_*, each with its default and
 * the reason for it in libs/core/src/config/config.ts and the README). Every default errs on
 * the side of not destroying.
 */
export function reaperOptionsFromConfig(config: NormConfig): ReaperOptions {
  return {
    mode: config.reaperMode,
    intervalMs: config.reaperIntervalMs,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
    startupGraceMs: config.reaperStartupGraceMs,
    aliveSilentGraceMs: config.reaperAliveSilentGraceMs,
    quarantineMs: config.reaperQuarantineMs,
    maxPerCycle: config.reaperMaxPerCycle,
    rateLimit: { max: config.reaperRateLimit, windowMs: config.reaperRateWindowMs },
    hostShare: { max: config.reaperHostShare, minSilent: config.reaperHostMinSilent },
    fleetShare: { max: config.reaperFleetShare, minSilent: config.reaperFleetMinSilent },
    intakeDrop: { drop: config.reaperIntakeDrop, minBaseline: config.reaperIntakeMinBaseline },
    intakeWindowMs: config.reaperIntakeWindowMs,
    // Not a brake: a bound on one cycle's read; the cycle cap acts on far fewer.
    maxCandidates: 500,
  };
}

/** The defaults, for tests and benchmarks: the settings with nothing set. */
export const DEFAULT_REAPER_OPTIONS: ReaperOptions = reaperOptionsFromConfig(loadConfig({}));

export interface ReaperCycle {
  at: Date;
  durationMs: number;
  candidates: number;
  acted: number;
  held: number;
  alerts: number;
  breaker: BreakerState | null;
  frozenHosts: string[];
}

export type ReaperStopReason = { reason: 'aborted'; cycles: number };

const ACTOR = 'system:reaper';

/**
 * One reaper: its memory across cycles and the operator's controls. One object per worker;
 * only the one holding the leader lock runs cycles.
 */
export class Reaper {
  readonly memory: ReaperMemory;
  lastCycle: ReaperCycle | null = null;
  /** Last audited outcome per instance, so a decision held for an hour is audited once, not per cycle. */
  private readonly audited = new Map<string, string>();
  private readonly hostFlags = new Map<string, string>();

  constructor(
    private readonly deps: Omit<ReaperDeps, 'lock'>,
    readonly options: ReaperOptions,
    /** A preview starts from the leader's published memory instead of a fresh one. */
    memory?: Partial<ReaperMemory>,
  ) {
    this.memory = {
      startedAt: deps.clock.now(),
      paused: false,
      breaker: null,
      intakeBaseline: null,
      recentActions: [],
      ...memory,
    };
  }

  private get policy(): ReaperPolicy {
    return {
      ...this.options,
      startupGraceMs: Math.max(this.options.startupGraceMs, this.options.heartbeatTimeoutMs),
    };
  }

  /** Reads the fleet, asks every involved host for `xl list`, and decides (no effects). */
  async plan(): Promise<{
    plan: ReapingPlan;
    hosts: Map<string, ReaperHostRecord>;
    candidates: Map<string, ReaperCandidate>;
  }> {
    const now = this.deps.clock.now();
    const candidates = await this.deps.store.listCandidates(now, this.options.maxCandidates);
    const fleet = await this.deps.store.fleetCounts(
      now,
      new Date(now.getTime() - this.options.intakeWindowMs),
    );
    const hostIds = [...new Set(candidates.flatMap((c) => (c.hostId ? [c.hostId] : [])))];
    const records = hostIds.length ? await this.deps.store.hosts(hostIds, now) : [];
    const hosts = new Map<string, ReaperHostRecord>(records.map((h) => [h.id, h]));
    const views = new Map<string, ReaperHostView>();
    await Promise.all(
      records.map(async (h) => {
        let domains: Map<string, DomainSummary> | null = null;
        if (h.status === 'online' && !h.maintenance) {
          try {
            const list = await this.deps.xen.forHost(h.endpoint).listDomains();
            domains = new Map(list.map((d) => [d.name, d]));
          } catch (err) {
            this.deps.log.warn('reaper could not list domains', { host: h.name, error: describe(err) });
          }
        }
        views.set(h.id, { ...h, domains });
      }),
    );
    const plan = decideReaping({
      now: this.deps.clock.now(),
      candidates,
      hosts: views,
      fleet,
      policy: this.policy,
      memory: this.memory,
    });
    return { plan, hosts, candidates: new Map(candidates.map((c) => [c.instanceId, c])) };
  }

  /** One cycle: decide, record, act. Safe to repeat and to interrupt anywhere. */
  async runCycle(): Promise<ReaperCycle> {
    const started = Date.now();
    const { plan, hosts, candidates } = await this.plan();
    const now = this.deps.clock.now();
    this.memory.intakeBaseline = plan.intakeBaseline;
    await this.applyBreaker(plan, now);
    await this.flagHosts(plan);

    let acted = 0;
    let held = 0;
    let alerts = 0;
    for (const d of plan.decisions) {
      if (d.kind === 'hold') held++;
      if (d.kind === 'alert') alerts++;
      if (d.kind !== 'act') {
        await this.record(d, now);
        continue;
      }
      const full = candidates.get(d.instanceId);
      if (!full) continue;
      try {
        // The decision commits with its effect (one transaction), so a death anywhere leaves both or neither.
        const decision = this.decisionEvent(d);
        const host = d.hostId ? hosts.get(d.hostId) : undefined;
        let outcome: ReaperActOutcome;
        switch (d.action) {
          case 'quarantine':
            if (!host) throw new Error('no host for quarantine');
            outcome = await this.deps.actions.quarantine(full, host, now, decision);
            break;
          case 'revive':
            outcome = await this.deps.actions.revive(full, host, now, decision);
            break;
          case 'destroy':
            outcome = await this.deps.actions.decommission(full, d.reason, now, decision);
            break;
        }
        if (outcome === 'already-taken') continue;
        this.audited.set(d.instanceId, `act:${d.action}`);
        if (d.action !== 'revive') this.memory.recentActions.push(now);
        acted++;
        this.deps.log.info('reaper acted', { instanceId: d.instanceId, action: d.action, reason: d.reason });
      } catch (err) {
        // Nothing was recorded: the next cycle re-reads the instance and decides again.
        this.audited.delete(d.instanceId);
        this.deps.log.error('reaper action failed', {
          instanceId: d.instanceId,
          action: d.action,
          error: describe(err),
        });
      }
    }
    const windowStart = now.getTime() - this.options.rateLimit.windowMs;
    this.memory.recentActions = this.memory.recentActions.filter((t) => t.getTime() > windowStart);

    this.lastCycle = {
      at: now,
      durationMs: Date.now() - started,
      candidates: plan.decisions.length,
      acted,
      held,
      alerts,
      breaker: this.memory.breaker,
      frozenHosts: plan.frozenHosts.map((h) => h.name),
    };
    return this.lastCycle;
  }

  /** Applies what operators asked for through the shared control (pause, reset) before a cycle. */
  async syncControl(control: ReaperControl): Promise<void> {
    const state = await control.read();
    this.memory.paused = state.paused;
    if (this.resetSeq === null) {
      // A reset requested before this reaper led was for the previous one.
      this.resetSeq = state.resetSeq;
    } else if (state.resetSeq !== this.resetSeq) {
      this.resetSeq = state.resetSeq;
      await this.resetBreaker(state.resetBy ?? 'operator');
    }
  }

  private resetSeq: number | null = null;

  status(leader: boolean): ReaperStatusView {
    const grace = Math.max(this.options.startupGraceMs, this.options.heartbeatTimeoutMs);
    const c = this.lastCycle;
    return {
      leader,
      leaderId: leader ? (this.deps.workerId ?? null) : null,
      mode: this.options.mode,
      startedAt: this.memory.startedAt.toISOString(),
      startupGraceUntil: new Date(this.memory.startedAt.getTime() + grace).toISOString(),
      paused: this.memory.paused,
      breaker: this.memory.breaker
        ? { reason: this.memory.breaker.reason, since: this.memory.breaker.since.toISOString() }
        : null,
      intakeBaseline: this.memory.intakeBaseline,
      actionsInWindow: this.memory.recentActions.length,
      lastCycle: c
        ? {
            at: c.at.toISOString(),
            durationMs: c.durationMs,
            candidates: c.candidates,
            acted: c.acted,
            held: c.held,
            alerts: c.alerts,
            frozenHosts: c.frozenHosts,
          }
        : null,
      thresholds: thresholdsOf(this.options),
    };
  }

  pause(): void {
    this.memory.paused = true;
  }

  resume(): void {
    this.memory.paused = false;
  }

  /** Operator reset: the breaker closes and every deadline starts again from now. */
  async resetBreaker(actor: string): Promise<void> {
    const before = this.memory.breaker;
    this.memory.breaker = null;
    const reset = await this.deps.store.resetDeadlines(this.deps.clock.now());
    await this.deps.audit({
      actor,
      action: 'lifecycle.breaker.reset',
      objectType: 'reaper',
      objectId: null,
      before: { breaker: before ? { ...before, since: before.since.toISOString() } : null },
      after: { deadlinesReset: reset },
      reason: 'operator reset',
    });
  }

  private async applyBreaker(plan: ReapingPlan, now: Date): Promise<void> {
    if (plan.breakerChange === 'opened' && plan.breaker) {
      this.memory.breaker = plan.breaker;
      this.deps.log.error('reaper breaker open', { reason: plan.breaker.reason });
      await this.deps.audit({
        actor: ACTOR,
        action: 'lifecycle.breaker.open',
        objectType: 'reaper',
        objectId: null,
        after: {
          reason: plan.breaker.reason,
          thresholds: { fleetShare: this.options.fleetShare, intakeDrop: this.options.intakeDrop },
        },
        reason: plan.breaker.reason,
      });
    } else if (plan.breakerChange === 'recovered') {
      const before = this.memory.breaker;
      this.memory.breaker = null;
      // The silence was not the instances' fault: judge nobody on it.
      const reset = await this.deps.store.resetDeadlines(now);
      this.deps.log.warn('reaper breaker recovered', { deadlinesReset: reset });
      await this.deps.audit({
        actor: ACTOR,
        action: 'lifecycle.breaker.recover',
        objectType: 'reaper',
        objectId: null,
        before: { reason: before?.reason ?? null },
        after: { deadlinesReset: reset },
        reason: 'signal recovered',
      });
    }
  }

  private async flagHosts(plan: ReapingPlan): Promise<void> {
    const flags = new Map<string, { name: string; flag: string; data: Record<string, unknown> }>();
    for (const a of plan.hostAlerts) flags.set(a.hostId, { name: a.name, flag: a.alert, data: {} });
    for (const f of plan.frozenHosts) {
      flags.set(f.hostId, {
        name: f.name,
        flag: 'host-frozen',
        data: { silent: f.silent, live: f.live, threshold: this.options.hostShare },
      });
    }
    for (const [hostId, f] of flags) {
      if (this.hostFlags.get(hostId) === f.flag) continue;
      this.hostFlags.set(hostId, f.flag);
      this.deps.log.warn('reaper host alert', { host: f.name, alert: f.flag, ...f.data });
      await this.deps.audit({
        actor: ACTOR,
        action: 'lifecycle.host.alert',
        objectType: 'host',
        objectId: hostId,
        after: { alert: f.flag, ...f.data },
        reason: f.flag,
      });
    }
    for (const hostId of [...this.hostFlags.keys()]) if (!flags.has(hostId)) this.hostFlags.delete(hostId);
  }

  /** A decision that acts on nothing (hold, wait, alert), audited once per outcome. */
  private async record(d: ReaperDecision, _now: Date): Promise<void> {
    const event = this.decisionEvent(d);
    const outcome = (event.after as { outcome: string }).outcome;
    if (this.audited.get(d.instanceId) === outcome) return;
    this.audited.set(d.instanceId, outcome);
    await this.deps.audit(event);
  }

  private decisionEvent(d: ReaperDecision): AuditEventInput {
    const outcome =
      d.kind === 'act'
        ? `act:${d.action}`
        : d.kind === 'hold'
          ? `hold:${d.brake}:${d.wouldBe}`
          : d.kind === 'alert'
            ? `alert:${d.alert}`
            : `wait:${d.reason}`;
    return {
      actor: ACTOR,
      action: `lifecycle.reap.${d.kind}`,
      objectType: 'instance',
      objectId: d.instanceId,
      after: { outcome, signals: d.signals, thresholds: thresholdsOf(this.options) },
      reason: d.reason,
    };
  }
}

function thresholdsOf(o: ReaperOptions): Record<string, unknown> {
  return {
    mode: o.mode,
    heartbeatTimeoutMs: o.heartbeatTimeoutMs,
    startupGraceMs: Math.max(o.startupGraceMs, o.heartbeatTimeoutMs),
    aliveSilentGraceMs: o.aliveSilentGraceMs,
    quarantineMs: o.quarantineMs,
    maxPerCycle: o.maxPerCycle,
    rateLimit: o.rateLimit,
    hostShare: o.hostShare,
    fleetShare: o.fleetShare,
    intakeDrop: o.intakeDrop,
  };
}

/**
 * The reaper loop. Every worker runs it; only the leader-lock holder reaps, so exactly one
 * reaper is active. Leadership changing hands starts a fresh Reaper, whose startup grace
 * applies again: a new leader has not watched the fleet yet. Returns when `signal` aborts.
 */
export async function runReaperLoop(
  deps: ReaperDeps,
  options: ReaperOptions,
  signal: AbortSignal,
  onLeading?: (reaper: Reaper | null) => void,
): Promise<ReaperStopReason> {
  let cycles = 0;
  while (!signal.aborted) {
    let lease = null;
    try {
      lease = await deps.lock.tryAcquire();
    } catch (err) {
      deps.log.warn('reaper could not try the leader lock', { error: describe(err) });
    }
    if (!lease) {
      await pause(deps.clock, options.intervalMs, signal);
      continue;
    }
    const reaper = new Reaper(deps, options);
    onLeading?.(reaper);
    deps.log.info('reaper leading', { mode: options.mode });
    const active = AbortSignal.any([signal, lease.lost]);
    try {
      while (!active.aborted) {
        try {
          if (deps.control) await reaper.syncControl(deps.control);
          const cycle = await reaper.runCycle();
          await deps.control?.publishStatus(reaper.status(true));
          cycles++;
          deps.log.debug('reaper cycle', { ...cycle, at: cycle.at.toISOString() });
        } catch (err) {
          deps.log.error('reaper cycle failed', { error: describe(err) });
        }
        await pause(deps.clock, options.intervalMs, active);
      }
    } finally {
      onLeading?.(null);
      await lease.release();
    }
  }
  return { reason: 'aborted', cycles };
}

async function pause(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  try {
    await clock.sleep(ms, signal);
  } catch {
    // Aborted: the caller's loop condition sees it.
  }
}

function describe(err: unknown): string {
  if (err instanceof DomainError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
