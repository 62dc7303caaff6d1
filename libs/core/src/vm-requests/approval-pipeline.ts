/**
 * The approval pipeline: an ordered list of steps from configuration, each a plug-in that
 * looks at the request and answers approve, reject (with a reason) or pending. The pipeline
 * stops at the first reject or pending step, so later steps never see a request an earlier
 * one has not passed, except that consecutive `parallel` steps are all asked at once. Human
 * steps answer pending until someone decides; a step already decided in the previous plan
 * keeps its decision, so re-running the pipeline after a vote never asks a webhook twice.
 */

export interface ApprovalSubject {
  id: string;
  name: string;
  ownerId: string;
  ownerGroups: readonly string[];
  vcpus: number;
  memoryMb: number;
  diskGb: number;
  lifecycleClass: 'cattle' | 'pet';
  labels: Readonly<Record<string, string>>;
  /** Ids and names, so a checklist condition may name either. */
  imageId?: string | null;
  imageName?: string | null;
  networkId?: string | null;
  networkName?: string | null;
}

export type StepDecision =
  | { decision: 'approve'; reason?: string; detail?: Record<string, unknown> }
  | { decision: 'reject'; reason: string; detail?: Record<string, unknown> }
  | {
      decision: 'pending';
      waitingOn: string;
      groups?: readonly string[];
      /** Votes, timers and the like the step needs back on its next evaluation. */
      detail?: Record<string, unknown>;
    };

/** Usage counted against a quota: live instances plus requests still in flight. */
export interface QuotaUsage {
  instances: number;
  vcpus: number;
  memoryMb: number;
}

export type UsageScope = { ownerId: string } | { group: string };

export interface ApprovalContext {
  /** Excludes the request being evaluated, which the step adds itself. */
  usage(scope: UsageScope, excludeRequestId: string): Promise<QuotaUsage>;
  /** Whether placement could fit the request now (the capacity step); absent in a dry context. */
  fits?(): Promise<{ fits: boolean; reason: string | null; detail: Record<string, unknown> }>;
  /** The plan this evaluation continues from (votes, callbacks, timers); empty on creation. */
  previousPlan?: readonly PlanEntry[];
  /** This step's entry in `previousPlan`, set by the pipeline for the step it asks. */
  previous?: PlanEntry;
  now?: Date;
  /** A preview asks without side effects: webhooks and commands are not called. */
  dryRun?: boolean;
  /** Schedules an outside step (webhook, command) to run out of the transaction, once per step. */
  defer?(step: string): Promise<void>;
}

export interface ApprovalStep {
  readonly name: string;
  readonly kind: 'automatic' | 'manual';
  /** Consecutive parallel steps are asked together and may be decided in any order. */
  readonly parallel?: boolean;
  /** False: the step does not concern this request and is recorded as skipped. */
  applies?(subject: ApprovalSubject): { applies: boolean; why: string };
  evaluate(subject: ApprovalSubject, ctx: ApprovalContext): Promise<StepDecision>;
}

export type PlanStatus = 'approved' | 'rejected' | 'pending' | 'skipped' | 'not_reached';

export interface PlanEntry {
  index: number;
  step: string;
  kind: 'automatic' | 'manual';
  status: PlanStatus;
  reason: string | null;
  waitingOn: string | null;
  groups: string[];
  detail: Record<string, unknown>;
  decidedAt: string | null;
}

export interface PipelineOutcome {
  outcome: 'approved' | 'rejected' | 'pending';
  plan: PlanEntry[];
  /** The rejecting step's reason, for the request's state reason. */
  reason: string | null;
}

export async function evaluatePipeline(
  steps: readonly ApprovalStep[],
  subject: ApprovalSubject,
  ctx: ApprovalContext,
  now: Date,
): Promise<PipelineOutcome> {
  const plan: PlanEntry[] = [];
  let outcome: PipelineOutcome['outcome'] = 'approved';
  let reason: string | null = null;
  // True while every step since the first pending one was parallel: the next parallel step is still asked.
  let parallelRun = false;
  for (const [index, step] of steps.entries()) {
    const base = { index, step: step.name, kind: step.kind, groups: [], detail: {} };
    const reachable =
      outcome === 'approved' || (outcome === 'pending' && parallelRun && step.parallel === true);
    if (!reachable) {
      parallelRun = false;
      plan.push({ ...base, status: 'not_reached', reason: null, waitingOn: null, decidedAt: null });
      continue;
    }
    parallelRun = step.parallel === true;
    const prior = ctx.previousPlan?.find((e) => e.index === index && e.step === step.name);
    if (prior && (prior.status === 'approved' || prior.status === 'skipped' || prior.status === 'rejected')) {
      plan.push(prior);
      if (prior.status === 'rejected') {
        outcome = 'rejected';
        reason = `${step.name}: ${prior.reason ?? 'rejected'}`;
      }
      continue;
    }
    const applies = step.applies?.(subject);
    if (applies && !applies.applies) {
      plan.push({
        ...base,
        status: 'skipped',
        reason: applies.why,
        waitingOn: null,
        decidedAt: now.toISOString(),
      });
      continue;
    }
    const d = await step.evaluate(subject, { ...ctx, previous: prior, now });
    switch (d.decision) {
      case 'approve':
        plan.push({
          ...base,
          status: 'approved',
          reason: d.reason ?? null,
          waitingOn: null,
          groups: [...(prior?.groups ?? [])],
          detail: d.detail ?? {},
          decidedAt: now.toISOString(),
        });
        break;
      case 'reject':
        outcome = 'rejected';
        reason = `${step.name}: ${d.reason}`;
        plan.push({
          ...base,
          status: 'rejected',
          reason: d.reason,
          waitingOn: null,
          groups: [...(prior?.groups ?? [])],
          detail: d.detail ?? {},
          decidedAt: now.toISOString(),
        });
        break;
      case 'pending':
        outcome = 'pending';
        plan.push({
          ...base,
          status: 'pending',
          reason: null,
          waitingOn: d.waitingOn,
          groups: [...(d.groups ?? [])],
          detail: d.detail ?? {},
          decidedAt: null,
        });
        break;
    }
  }
  // A rejection anywhere ends the request, even one found after a parallel step still pending.
  if (plan.some((p) => p.status === 'rejected')) outcome = 'rejected';
  return { outcome, plan, reason };
}

export interface QuotaLimits {
  instances?: number;
  vcpus?: number;
  memoryMb?: number;
}

export interface QuotaPolicy {
  perPrincipal: QuotaLimits;
  groups: Readonly<Record<string, QuotaLimits>>;
}

/**
 * Size and quota: the request plus everything its owner (and each of the owner's groups that
 * has a quota) already holds or has in flight must stay within the limits. Counting in-flight
 * requests is what stops ten parallel requests from each fitting on their own.
 */
export class QuotaStep implements ApprovalStep {
  readonly name = 'quota';
  readonly kind = 'automatic';

  constructor(private readonly policy: QuotaPolicy) {}

  async evaluate(s: ApprovalSubject, ctx: ApprovalContext): Promise<StepDecision> {
    const scopes: Array<{ label: string; scope: UsageScope; limits: QuotaLimits }> = [
      { label: `principal ${s.ownerId}`, scope: { ownerId: s.ownerId }, limits: this.policy.perPrincipal },
    ];
    for (const g of s.ownerGroups) {
      const limits = this.policy.groups[g];
      if (limits) scopes.push({ label: `group ${g}`, scope: { group: g }, limits });
    }
    const checked: Record<string, unknown> = {};
    for (const { label, scope, limits } of scopes) {
      const used = await ctx.usage(scope, s.id);
      const wanted: QuotaUsage = {
        instances: used.instances + 1,
        vcpus: used.vcpus + s.vcpus,
        memoryMb: used.memoryMb + s.memoryMb,
      };
      checked[label] = { used, limits };
      for (const key of ['instances', 'vcpus', 'memoryMb'] as const) {
        const limit = limits[key];
        if (limit !== undefined && wanted[key] > limit)
          return {
            decision: 'reject',
            reason: `quota exceeded for ${label}: ${key} would be ${wanted[key]}, limit ${limit}`,
            detail: { scope: label, resource: key, wanted: wanted[key], limit, used },
          };
      }
    }
    return { decision: 'approve', reason: 'within quota', detail: checked };
  }
}

/** Names a Xen host or an operator would confuse with its own domains. */
const RESERVED_NAMES = new Set(['domain-0', 'dom0', 'localhost', 'xen']);

/** Naming policy: an operator-set pattern on top of the RFC 1123 label checked at the edge. */
export class NamingStep implements ApprovalStep {
  readonly name = 'naming';
  readonly kind = 'automatic';

  constructor(private readonly pattern: RegExp) {}

  evaluate(s: ApprovalSubject): Promise<StepDecision> {
    if (RESERVED_NAMES.has(s.name))
      return Promise.resolve({ decision: 'reject', reason: `the name ${s.name} is reserved` });
    if (!this.pattern.test(s.name))
      return Promise.resolve({
        decision: 'reject',
        reason: `the name ${s.name} does not match the naming policy ${this.pattern.source}`,
      });
    return Promise.resolve({ decision: 'approve', reason: 'name matches the policy' });
  }
}

export interface ApprovalConfig {
  steps: readonly string[];
  quota: QuotaPolicy;
  namePattern: RegExp;
}

/** Builds the configured steps in order; an unknown name fails at boot, not on the first request. */
export function buildApprovalSteps(config: ApprovalConfig): ApprovalStep[] {
  return config.steps.map((name) => {
    switch (name) {
      case 'quota':
        return new QuotaStep(config.quota);
      case 'naming':
        return new NamingStep(config.namePattern);
      default:
        throw new Error(`unknown approval step ${name}`);
    }
  });
}

/** `instances=10,vcpus=32,memoryMb=65536` → limits; an empty string sets none. */
export function parseQuotaLimits(text: string): QuotaLimits {
  const out: QuotaLimits = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^(instances|vcpus|memoryMb)=(\d+)$/.exec(part);
    if (!m) throw new Error(`bad quota term "${part}" (want instances=N, vcpus=N or memoryMb=N)`);
    out[m[1] as keyof QuotaLimits] = Number(m[2]);
  }
  return out;
}

/** `ops:instances=5,vcpus=8;dev:memoryMb=16384` → per-group limits. */
export function parseGroupQuotas(text: string): Record<string, QuotaLimits> {
  const out: Record<string, QuotaLimits> = {};
  for (const part of text
    .split(';')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const i = part.indexOf(':');
    if (i <= 0) throw new Error(`bad group quota "${part}" (want group:instances=N,…)`);
    out[part.slice(0, i)] = parseQuotaLimits(part.slice(i + 1));
  }
  return out;
}
