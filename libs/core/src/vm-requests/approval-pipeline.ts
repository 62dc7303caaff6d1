/**
 * The approval pipeline: an ordered list of steps from configuration, each a plug-in that
 * looks at the request and answers approve, reject (with a reason) or pending. The pipeline
 * stops at the first reject or pending step, so later steps never see a request an earlier
 * one has not passed. Human steps (a later issue) answer pending until someone decides.
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
}

export type StepDecision =
  | { decision: 'approve'; reason?: string; detail?: Record<string, unknown> }
  | { decision: 'reject'; reason: string; detail?: Record<string, unknown> }
  | { decision: 'pending'; waitingOn: string; groups?: readonly string[] };

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
}

export interface ApprovalStep {
  readonly name: string;
  readonly kind: 'automatic' | 'manual';
  evaluate(subject: ApprovalSubject, ctx: ApprovalContext): Promise<StepDecision>;
}

export type PlanStatus = 'approved' | 'rejected' | 'pending' | 'not_reached';

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
  for (const [index, step] of steps.entries()) {
    const base = { index, step: step.name, kind: step.kind, groups: [], detail: {} };
    if (outcome !== 'approved') {
      plan.push({ ...base, status: 'not_reached', reason: null, waitingOn: null, decidedAt: null });
      continue;
    }
    const d = await step.evaluate(subject, ctx);
    switch (d.decision) {
      case 'approve':
        plan.push({
          ...base,
          status: 'approved',
          reason: d.reason ?? null,
          waitingOn: null,
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
          decidedAt: null,
        });
        break;
    }
  }
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
