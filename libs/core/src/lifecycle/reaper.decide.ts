import { type DomainSummary } from '../ports';

/**
 * The reaper's judgement, as a pure function of what it observed. Everything that can stop
 * an automatic destroy lives here, so each brake is tested without a database or a host.
 *
 * Why so many brakes: a missing heartbeat is the weakest signal there is. Norm being down,
 * the network between instances and Norm, a host hanging, or the heartbeat endpoint itself
 * failing all look exactly like "every instance died". Sensu deletes on the first missed
 * keepalive and users report false deregistrations; Kubernetes rate-limits evictions and
 * stops altogether when too much looks dead at once. This is the second kind.
 */

export type ReaperMode = 'dry-run' | 'two-phase' | 'direct';

export interface ReaperCandidate {
  instanceId: string;
  name: string;
  hostId: string | null;
  domainName: string;
  lifecycleClass: 'cattle' | 'pet';
  lastHeartbeatAt: Date | null;
  deadlineAt: Date;
  /** Set once the two-phase path shut the domain down; the instance keeps disk and addresses. */
  quarantinedAt: Date | null;
  /** The heartbeat timeout in force for it (its own, else its class's), in seconds. */
  timeoutS: number;
}

export interface ReaperHostView {
  id: string;
  name: string;
  status: 'unknown' | 'online' | 'unreachable';
  maintenance: boolean;
  /** Live cattle on the host, silent or not: the denominator of the per-host share. */
  liveCattle: number;
  /** Live cattle on the host past their deadline. */
  silentCattle: number;
  /** This cycle's `xl list`, or null when reading it failed (the host did not answer). */
  domains: ReadonlyMap<string, DomainSummary> | null;
}

export interface FleetView {
  liveCattle: number;
  silentCattle: number;
  /** Live instances that beat within the intake window ending now. */
  intakeRecent: number;
}

export interface ReaperPolicy {
  mode: ReaperMode;
  /** No action before the reaper has run this long; never less than one heartbeat timeout. */
  startupGraceMs: number;
  /** A domain `xl list` shows running is only reaped this long past its deadline. */
  aliveSilentGraceMs: number;
  /** Two-phase: how long a shut-down instance waits (disk and addresses kept) before destroy. */
  quarantineMs: number;
  /** Actions (shutdown or destroy) per cycle. */
  maxPerCycle: number;
  /** Actions per rolling window across cycles. */
  rateLimit: { max: number; windowMs: number };
  /** A host with more than this share of its cattle silent (and at least `minSilent`) is frozen. */
  hostShare: { max: number; minSilent: number };
  /** More than this share of all cattle silent (and at least `minSilent`) opens the breaker. */
  fleetShare: { max: number; minSilent: number };
  /** Intake below `(1 - drop)` of its baseline opens the breaker, once the baseline is at least `minBaseline`. */
  intakeDrop: { drop: number; minBaseline: number };
}

export type Brake =
  'startup-grace' | 'paused' | 'breaker' | 'host-frozen' | 'dry-run' | 'cycle-cap' | 'rate-limit';

export type ReaperAction = 'quarantine' | 'destroy' | 'revive';

export type ReaperAlert = 'host-unreachable' | 'host-maintenance' | 'pet-silent';

export type DomainSignal = 'gone' | 'crashed' | 'shutdown' | 'running' | 'unknown';

export type ReaperDecision = {
  instanceId: string;
  name: string;
  hostId: string | null;
  signals: {
    lastHeartbeatAt: string | null;
    deadlineAt: string;
    overdueMs: number;
    domain: DomainSignal;
    hostStatus: string | null;
    hostMaintenance: boolean | null;
    quarantinedAt: string | null;
  };
  reason: string;
} & (
  | { kind: 'act'; action: ReaperAction }
  | { kind: 'hold'; brake: Brake; wouldBe: ReaperAction }
  | { kind: 'wait' }
  | { kind: 'alert'; alert: ReaperAlert }
);

export interface BreakerState {
  reason: string;
  since: Date;
}

/** What the reaper carries between cycles (in memory; a restart begins again with a grace). */
export interface ReaperMemory {
  startedAt: Date;
  paused: boolean;
  breaker: BreakerState | null;
  /** Exponentially weighted intake while healthy; null until the first cycle. */
  intakeBaseline: number | null;
  /** Times of recent actions, for the rolling rate limit. */
  recentActions: Date[];
}

export interface ReapingInput {
  now: Date;
  candidates: readonly ReaperCandidate[];
  hosts: ReadonlyMap<string, ReaperHostView>;
  fleet: FleetView;
  policy: ReaperPolicy;
  memory: ReaperMemory;
}

export interface FrozenHost {
  hostId: string;
  name: string;
  silent: number;
  live: number;
}

export interface ReapingPlan {
  decisions: ReaperDecision[];
  /** The breaker after this cycle: opened, kept open, or closed (recovered) here. */
  breaker: BreakerState | null;
  breakerChange: 'opened' | 'recovered' | null;
  frozenHosts: FrozenHost[];
  /** Hosts that could not be judged (unreachable, maintenance): a host problem, not dead instances. */
  hostAlerts: Array<{ hostId: string; name: string; alert: 'host-unreachable' | 'host-maintenance' }>;
  /** The intake baseline to carry into the next cycle (not moved while the signal looks bad). */
  intakeBaseline: number;
}

/** Why the fleet looks unhealthy right now, or null. */
export function fleetTrip(fleet: FleetView, baseline: number | null, policy: ReaperPolicy): string | null {
  const { liveCattle, silentCattle } = fleet;
  if (
    liveCattle > 0 &&
    silentCattle >= policy.fleetShare.minSilent &&
    silentCattle / liveCattle > policy.fleetShare.max
  ) {
    return `fleet-share: ${silentCattle}/${liveCattle} cattle silent exceeds ${policy.fleetShare.max}`;
  }
  if (
    baseline !== null &&
    baseline >= policy.intakeDrop.minBaseline &&
    fleet.intakeRecent < baseline * (1 - policy.intakeDrop.drop)
  ) {
    return `intake-drop: ${fleet.intakeRecent} beats against a baseline of ${Math.round(baseline)}`;
  }
  return null;
}

export function domainSignal(domains: ReadonlyMap<string, DomainSummary> | null, name: string): DomainSignal {
  if (!domains) return 'unknown';
  const d = domains.get(name);
  if (!d) return 'gone';
  if (d.flags.shutdown && (d.flags.shutdownReason === 'crash' || d.flags.shutdownReason === 'watchdog'))
    return 'crashed';
  if (d.flags.shutdown || d.flags.dying) return 'shutdown';
  return 'running';
}

/** Smoothing of the intake baseline: slow enough that a sharp drop stands out against it. */
const BASELINE_WEIGHT = 0.2;

export function decideReaping(input: ReapingInput): ReapingPlan {
  const { now, policy, memory, fleet } = input;
  const t = now.getTime();

  const trip = fleetTrip(fleet, memory.intakeBaseline, policy);
  let breaker = memory.breaker;
  let breakerChange: ReapingPlan['breakerChange'] = null;
  if (trip && !breaker) {
    breaker = { reason: trip, since: now };
    breakerChange = 'opened';
  } else if (!trip && breaker) {
    breaker = null;
    breakerChange = 'recovered';
  }
  const intakeBaseline =
    memory.intakeBaseline === null
      ? fleet.intakeRecent
      : trip
        ? memory.intakeBaseline
        : memory.intakeBaseline * (1 - BASELINE_WEIGHT) + fleet.intakeRecent * BASELINE_WEIGHT;

  const frozenHosts: FrozenHost[] = [];
  const hostAlerts: ReapingPlan['hostAlerts'] = [];
  for (const host of input.hosts.values()) {
    // Maintenance first: the reaper does not even ask a host in maintenance for `xl list`.
    if (host.maintenance) {
      hostAlerts.push({ hostId: host.id, name: host.name, alert: 'host-maintenance' });
    } else if (host.status !== 'online' || host.domains === null) {
      hostAlerts.push({ hostId: host.id, name: host.name, alert: 'host-unreachable' });
    }
    if (
      host.liveCattle > 0 &&
      host.silentCattle >= policy.hostShare.minSilent &&
      host.silentCattle / host.liveCattle > policy.hostShare.max
    ) {
      frozenHosts.push({
        hostId: host.id,
        name: host.name,
        silent: host.silentCattle,
        live: host.liveCattle,
      });
    }
  }
  const frozen = new Set(frozenHosts.map((h) => h.hostId));

  const windowStart = t - policy.rateLimit.windowMs;
  let inWindow = memory.recentActions.filter((d) => d.getTime() > windowStart).length;
  let thisCycle = 0;

  // Oldest deadline first: the longest silent are the surest dead, and a cap leaves the rest for later.
  const ordered = [...input.candidates].sort((a, b) => a.deadlineAt.getTime() - b.deadlineAt.getTime());
  const decisions: ReaperDecision[] = [];
  for (const c of ordered) {
    const host = c.hostId ? input.hosts.get(c.hostId) : undefined;
    const signal = domainSignal(host?.domains ?? null, c.domainName);
    const base = {
      instanceId: c.instanceId,
      name: c.name,
      hostId: c.hostId,
      signals: {
        lastHeartbeatAt: c.lastHeartbeatAt?.toISOString() ?? null,
        deadlineAt: c.deadlineAt.toISOString(),
        overdueMs: t - c.deadlineAt.getTime(),
        domain: signal,
        hostStatus: host?.status ?? null,
        hostMaintenance: host?.maintenance ?? null,
        quarantinedAt: c.quarantinedAt?.toISOString() ?? null,
      },
    };

    // A beat after the shutdown means the instance was alive: bring it back, whatever the brakes.
    if (c.quarantinedAt && c.lastHeartbeatAt && c.lastHeartbeatAt > c.quarantinedAt) {
      decisions.push({ ...base, kind: 'act', action: 'revive', reason: 'heartbeat during quarantine' });
      continue;
    }
    if (c.lifecycleClass === 'pet') {
      decisions.push({ ...base, kind: 'alert', alert: 'pet-silent', reason: 'pets are never reaped' });
      continue;
    }
    if (host?.maintenance) {
      decisions.push({ ...base, kind: 'alert', alert: 'host-maintenance', reason: 'host in maintenance' });
      continue;
    }
    if (!host || host.status !== 'online' || host.domains === null) {
      decisions.push({
        ...base,
        kind: 'alert',
        alert: 'host-unreachable',
        reason: 'the host does not answer: a host problem, not a dead instance',
      });
      continue;
    }

    let action: ReaperAction;
    let reason: string;
    if (c.quarantinedAt) {
      if (signal === 'running') {
        // Someone started it again by hand, or the shutdown never finished: not ours to destroy.
        decisions.push({ ...base, kind: 'wait', reason: 'quarantined domain is running again' });
        continue;
      }
      const until = c.quarantinedAt.getTime() + policy.quarantineMs;
      if (t < until) {
        decisions.push({ ...base, kind: 'wait', reason: 'in quarantine' });
        continue;
      }
      action = 'destroy';
      reason = `silent through a ${policy.quarantineMs} ms quarantine`;
    } else {
      if (signal === 'running' && t < c.deadlineAt.getTime() + policy.aliveSilentGraceMs) {
        decisions.push({ ...base, kind: 'wait', reason: 'domain running, within the silent grace' });
        continue;
      }
      action = policy.mode === 'direct' ? 'destroy' : 'quarantine';
      reason =
        signal === 'running'
          ? `domain running but silent past the ${policy.aliveSilentGraceMs} ms grace`
          : `heartbeat missing and xl list shows the domain ${signal}`;
    }

    const brake = brakeFor(c, t, memory, policy, breaker, frozen, thisCycle, inWindow);
    if (brake) {
      decisions.push({ ...base, kind: 'hold', brake, wouldBe: action, reason });
      continue;
    }
    thisCycle++;
    inWindow++;
    decisions.push({ ...base, kind: 'act', action, reason });
  }

  return { decisions, breaker, breakerChange, frozenHosts, hostAlerts, intakeBaseline };
}

function brakeFor(
  c: ReaperCandidate,
  t: number,
  memory: ReaperMemory,
  policy: ReaperPolicy,
  breaker: BreakerState | null,
  frozen: ReadonlySet<string>,
  thisCycle: number,
  inWindow: number,
): Brake | null {
  // At least the instance's own timeout: one with a 1 h timeout may not have beaten since Norm came back.
  if (t < memory.startedAt.getTime() + Math.max(policy.startupGraceMs, c.timeoutS * 1000))
    return 'startup-grace';
  if (memory.paused) return 'paused';
  if (breaker) return 'breaker';
  if (c.hostId && frozen.has(c.hostId)) return 'host-frozen';
  if (policy.mode === 'dry-run') return 'dry-run';
  if (thisCycle >= policy.maxPerCycle) return 'cycle-cap';
  if (inWindow >= policy.rateLimit.max) return 'rate-limit';
  return null;
}
