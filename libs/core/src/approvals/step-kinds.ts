import { dirname, isAbsolute, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { parseDuration } from '../config/duration';
import {
  type ApprovalContext,
  type ApprovalStep,
  type ApprovalSubject,
  NamingStep,
  type PlanEntry,
  type QuotaPolicy,
  QuotaStep,
  type StepDecision,
} from '../vm-requests/approval-pipeline';
import {
  ApprovalPolicyInvalid,
  type ParsedPolicy,
  type PolicyIssue,
  type PolicyStep,
  quorumSchema,
  type Quorum,
  type TimeoutAction,
} from './approval-policy';
import { describeQuorum, tallyQuorum, type Vote } from './quorum';
import { matchCondition } from './step-condition';
import { type CommandRunner, signPayload, type WebhookPoster } from './step-runners';
import { buildSubscription, type WebhookSubscription } from '../notifications/webhook-subscriptions';

/** What step factories may use; all side effects come in here, so tests swap them. */
export interface StepKindDeps {
  quota: QuotaPolicy;
  namePattern: RegExp;
  webhooks: WebhookPoster;
  commands: CommandRunner;
  /** Public base URL of the API, told to webhooks so they know where to call back. */
  callbackBaseUrl: string | null;
  /** Where `secretEnv` names are looked up: secrets stay out of the policy file. */
  env: Readonly<Record<string, string | undefined>>;
}

/** A step kind: builds one step from its options (the policy entry minus the common fields). */
export type StepFactory = (
  options: Record<string, unknown>,
  deps: StepKindDeps,
  name: string,
) => ApprovalStep;

/** The contract of a site module named in `stepKinds`. */
export interface StepKindModule {
  createStep: StepFactory;
}

const noOptions = z.strictObject({});

const groupOptions = z.strictObject({
  groups: z.array(z.string().min(1)).min(1),
  quorum: quorumSchema.default('any'),
});

export const webhookOptions = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  /** Environment variable holding the HMAC secret shared with the far side. */
  secretEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/),
  requestTimeout: z.string().default('10s'),
  /** What a failed call (network, 5xx, nonsense answer) means: refuse, or wait for a callback. */
  onError: z.enum(['reject', 'pending']).default('reject'),
});

const commandOptions = z.strictObject({
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  commandTimeout: z.string().default('30s'),
});

/** The human step: waits until the quorum of the named groups approved, or one of them rejects. */
export class GroupStep implements ApprovalStep {
  readonly kind = 'manual';

  constructor(
    readonly name: string,
    private readonly groups: readonly string[],
    private readonly quorum: Quorum,
  ) {}

  evaluate(s: ApprovalSubject, ctx: ApprovalContext): Promise<StepDecision> {
    // Escalation adds groups to the stored entry; the entry's list is the live one.
    const groups = ctx.previous && ctx.previous.groups.length > 0 ? ctx.previous.groups : this.groups;
    const votes = votesOf(ctx.previous);
    const rejection = votes.find((v) => v.decision === 'reject' && v.by !== s.ownerId);
    if (rejection)
      return Promise.resolve({
        decision: 'reject',
        reason: rejection.comment ?? 'rejected',
        detail: { votes, rejectedBy: rejection.by, decidedBy: rejection.by },
      });
    const tally = tallyQuorum(this.quorum, groups, votes, s.ownerId);
    if (tally.met)
      return Promise.resolve({
        decision: 'approve',
        reason: `approved by ${tally.counted.join(', ')}`,
        detail: { votes, approvedBy: tally.counted, decidedBy: tally.counted.join(',') },
      });
    return Promise.resolve({
      decision: 'pending',
      waitingOn: describeQuorum(this.quorum, groups),
      groups,
      detail: {
        votes,
        quorum: this.quorum,
        remaining: tally.remaining,
        approvedBy: tally.counted,
        missingGroups: tally.missingGroups,
      },
    });
  }
}

/** Rejects at once what placement could not fit now, instead of after every human signed. */
export class CapacityStep implements ApprovalStep {
  readonly kind = 'automatic';
  constructor(readonly name: string) {}

  async evaluate(_s: ApprovalSubject, ctx: ApprovalContext): Promise<StepDecision> {
    if (!ctx.fits) return { decision: 'approve', reason: 'placement not checked here' };
    const r = await ctx.fits();
    return r.fits
      ? { decision: 'approve', reason: 'a host can take it now', detail: r.detail }
      : { decision: 'reject', reason: r.reason ?? 'no host can take this request', detail: r.detail };
  }
}

/**
 * A step that asks something outside Norm (a web service, a program). Inside a transaction it
 * never calls out: with `ctx.defer` (the request service's evaluation) it enqueues an
 * ApprovalStepRun job and waits; the worker calls `run` outside any transaction and records
 * the answer as `result` in the entry, and the next evaluation decides from it. Without
 * `defer` (unit tests, site tooling) it runs inline.
 */
export abstract class ExternalStep implements ApprovalStep {
  readonly kind = 'automatic';
  abstract readonly name: string;

  /** What the step waits on, in words. */
  protected abstract waiting(): string;

  /** The outside call; its `pending` detail is merged into the entry (e.g. a webhook's sentAt). */
  abstract run(
    s: ApprovalSubject,
    prior: Readonly<Record<string, unknown>>,
    now: Date,
  ): Promise<StepDecision>;

  /** A decision that arrived some other way (a webhook's callback). */
  protected settled(_detail: Readonly<Record<string, unknown>>): StepDecision | undefined {
    return undefined;
  }

  async evaluate(s: ApprovalSubject, ctx: ApprovalContext): Promise<StepDecision> {
    const detail = { ...(ctx.previous?.detail ?? {}) };
    const result = detail['result'] as
      { decision: 'approve' | 'reject'; reason: string; detail?: Record<string, unknown> } | undefined;
    if (result) {
      // The outside answer's own detail (exit code, output, …) reads as the step's detail.
      const merged = { ...detail, ...(result.detail ?? {}) };
      return result.decision === 'approve'
        ? { decision: 'approve', reason: result.reason, detail: merged }
        : { decision: 'reject', reason: result.reason, detail: merged };
    }
    const other = this.settled(detail);
    if (other) return other;
    if (ctx.dryRun) return { decision: 'pending', waitingOn: `would ask ${this.waiting()}`, detail };
    if (detail['dispatchedAt'] !== undefined || detail['sentAt'] !== undefined)
      return { decision: 'pending', waitingOn: this.waiting(), detail };
    const now = ctx.now ?? new Date();
    if (ctx.defer) {
      await ctx.defer(this.name);
      return {
        decision: 'pending',
        waitingOn: this.waiting(),
        detail: { ...detail, dispatchedAt: now.toISOString() },
      };
    }
    return this.run(s, detail, now);
  }
}

/**
 * Asks an external system once. It answers at once (approve/reject) or `pending` and calls
 * back later on /v1/approvals/callbacks; the callback lands in this entry's detail, and the
 * next evaluation reads it from there.
 */
export class WebhookStep extends ExternalStep {
  constructor(
    readonly name: string,
    private readonly options: z.infer<typeof webhookOptions> & { secret: string; requestTimeoutMs: number },
    private readonly deps: StepKindDeps,
  ) {
    super();
  }

  /** The callback endpoint checks the far side's HMAC with it. */
  get secret(): string {
    return this.options.secret;
  }

  protected waiting(): string {
    return `an answer from ${new URL(this.options.url).host}`;
  }

  protected override settled(detail: Readonly<Record<string, unknown>>): StepDecision | undefined {
    const callback = detail['callback'] as
      { decision: 'approve' | 'reject'; reason: string | null } | undefined;
    if (!callback) return undefined;
    return callback.decision === 'approve'
      ? { decision: 'approve', reason: callback.reason ?? 'approved by callback', detail: { ...detail } }
      : { decision: 'reject', reason: callback.reason ?? 'rejected by callback', detail: { ...detail } };
  }

  async run(s: ApprovalSubject, _prior: Readonly<Record<string, unknown>>, now: Date): Promise<StepDecision> {
    const body = JSON.stringify({
      requestId: s.id,
      step: this.name,
      request: s,
      callbackUrl:
        this.deps.callbackBaseUrl === null
          ? null
          : `${this.deps.callbackBaseUrl}/v1/approvals/callbacks/${s.id}/${this.name}`,
    });
    const sentAt = now.toISOString();
    const failed = (why: string): StepDecision =>
      this.options.onError === 'pending'
        ? { decision: 'pending', waitingOn: this.waiting(), detail: { sentAt, error: why } }
        : { decision: 'reject', reason: `webhook failed: ${why}`, detail: { sentAt, error: why } };
    let res: { status: number; body: string };
    try {
      res = await this.deps.webhooks.post(
        this.options.url,
        body,
        { 'x-norm-signature': signPayload(this.options.secret, body) },
        this.options.requestTimeoutMs,
      );
    } catch (err) {
      return failed((err as Error).message);
    }
    if (res.status < 200 || res.status >= 300) return failed(`HTTP ${res.status}`);
    const answer = webhookAnswer.safeParse(safeJson(res.body));
    if (!answer.success) return failed('the answer is not {"decision": "approve"|"reject"|"pending"}');
    const d = { sentAt, answer: answer.data };
    switch (answer.data.decision) {
      case 'approve':
        return { decision: 'approve', reason: answer.data.reason ?? 'approved by webhook', detail: d };
      case 'reject':
        return { decision: 'reject', reason: answer.data.reason ?? 'rejected by webhook', detail: d };
      case 'pending':
        return {
          decision: 'pending',
          waitingOn: `a callback from ${new URL(this.options.url).host}`,
          detail: d,
        };
    }
  }
}

const webhookAnswer = z.object({
  decision: z.enum(['approve', 'reject', 'pending']),
  reason: z.string().max(2000).optional(),
});

/**
 * Runs a site program like a Sensu handler: the request as JSON on STDIN, exit 0 approves,
 * any other exit rejects with the first line of STDOUT as the reason; a JSON object
 * `{"decision", "reason"}` on STDOUT wins over the exit code. Output is kept in the detail.
 */
export class CommandStep extends ExternalStep {
  constructor(
    readonly name: string,
    private readonly options: z.infer<typeof commandOptions> & { timeoutMs: number },
    private readonly runner: CommandRunner,
  ) {
    super();
  }

  protected waiting(): string {
    return `${this.options.command} to finish`;
  }

  async run(s: ApprovalSubject): Promise<StepDecision> {
    const r = await this.runner.run(
      this.options.command,
      this.options.args,
      JSON.stringify({ requestId: s.id, step: this.name, request: s }),
      this.options.timeoutMs,
    );
    const detail = { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut };
    if (r.timedOut)
      return {
        decision: 'reject',
        reason: `${this.options.command} timed out after ${this.options.commandTimeout}`,
        detail,
      };
    const json = commandAnswer.safeParse(safeJson(r.stdout.trim()));
    if (json.success)
      return json.data.decision === 'approve'
        ? { decision: 'approve', reason: json.data.reason ?? `${this.options.command} approved`, detail }
        : { decision: 'reject', reason: json.data.reason ?? `${this.options.command} rejected`, detail };
    const firstLine = r.stdout.split('\n')[0]?.trim() || null;
    return r.exitCode === 0
      ? { decision: 'approve', reason: firstLine ?? `${this.options.command} exited 0`, detail }
      : {
          decision: 'reject',
          reason: firstLine ?? `${this.options.command} exited ${r.exitCode ?? 'on a signal'}`,
          detail,
        };
  }
}

const commandAnswer = z.object({ decision: z.enum(['approve', 'reject']), reason: z.string().optional() });

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function votesOf(entry: PlanEntry | undefined): Vote[] {
  const v = entry?.detail['votes'];
  return Array.isArray(v) ? (v as Vote[]) : [];
}

export const BUILTIN_STEP_KINDS: Readonly<Record<string, StepFactory>> = {
  quota: (o, deps) => (noOptions.parse(o), new QuotaStep(deps.quota)),
  naming: (o, deps) => (noOptions.parse(o), new NamingStep(deps.namePattern)),
  capacity: (o, _deps, name) => (noOptions.parse(o), new CapacityStep(name)),
  group: (o, _deps, name) => {
    const g = groupOptions.parse(o);
    return new GroupStep(name, g.groups, g.quorum);
  },
  webhook: (o, deps, name) => {
    const w = webhookOptions.parse(o);
    const secret = deps.env[w.secretEnv];
    if (!secret) throw new Error(`secretEnv: the environment variable ${w.secretEnv} is not set`);
    return new WebhookStep(name, { ...w, secret, requestTimeoutMs: parseDuration(w.requestTimeout) }, deps);
  },
  command: (o, deps, name) => {
    const c = commandOptions.parse(o);
    return new CommandStep(name, { ...c, timeoutMs: parseDuration(c.commandTimeout) }, deps.commands);
  },
};

/** A configured step: the kind's step plus the policy's name, condition, parallelism and timer. */
export class ChecklistStep implements ApprovalStep {
  readonly kind: 'automatic' | 'manual';
  readonly parallel: boolean;

  constructor(
    readonly config: PolicyStep,
    readonly inner: ApprovalStep,
  ) {
    this.kind = inner.kind;
    this.parallel = config.parallel === true;
  }

  get name(): string {
    return this.config.name;
  }

  applies(s: ApprovalSubject): { applies: boolean; why: string } {
    return matchCondition(this.config.when, s);
  }

  async evaluate(s: ApprovalSubject, ctx: ApprovalContext): Promise<StepDecision> {
    const fired = ctx.previous?.detail['timeoutFired'] as TimeoutAction['action'] | undefined;
    if (fired === 'expire')
      return { decision: 'reject', reason: 'timed out', detail: { ...ctx.previous?.detail } };
    if (fired === 'approve')
      return {
        decision: 'approve',
        reason: 'approved on timeout (low-risk policy)',
        detail: { ...ctx.previous?.detail },
      };
    const d = await this.inner.evaluate(s, ctx);
    if (d.decision !== 'pending') return d;
    // Timers live in the stored entry so they survive restarts; the first pending evaluation sets them.
    const before = ctx.previous?.detail ?? {};
    const now = ctx.now ?? new Date();
    const pendingSince =
      typeof before['pendingSince'] === 'string' ? before['pendingSince'] : now.toISOString();
    const dueAt =
      'dueAt' in before
        ? before['dueAt']
        : this.config.timeout === undefined || this.config.onTimeout === undefined
          ? null
          : new Date(Date.parse(pendingSince) + this.config.timeout).toISOString();
    const carried = Object.fromEntries(
      Object.entries(before).filter(([k]) => ['escalated', 'reminders', 'timeoutLog'].includes(k)),
    );
    return { ...d, detail: { ...carried, ...(d.detail ?? {}), pendingSince, dueAt } };
  }
}

export interface Checklist {
  steps: ChecklistStep[];
  /** The file it came from, or null for the default built from NORM_APPROVAL_STEPS. */
  source: string | null;
  policy: ParsedPolicy['policy'];
  /** The policy's `notifications`, secrets resolved; empty without a policy file. */
  subscriptions: WebhookSubscription[];
}

/**
 * Builds every step at boot. A kind's bad options become an ApprovalPolicyInvalid naming the
 * step's line, so Norm refuses to start instead of refusing requests.
 */
export function buildChecklist(parsed: ParsedPolicy, deps: StepKindDeps): Checklist {
  const kinds: Record<string, StepFactory> = { ...BUILTIN_STEP_KINDS };
  const issues: PolicyIssue[] = [];
  const base = parsed.source.startsWith('<') ? process.cwd() : dirname(resolve(parsed.source));
  for (const [kind, path] of Object.entries(parsed.policy.stepKinds ?? {})) {
    try {
      const abs = isAbsolute(path) ? path : resolve(base, path);
      const mod = createRequire(resolve(base, 'policy.js'))(abs) as Partial<StepKindModule>;
      if (typeof mod.createStep !== 'function') throw new Error(`${path} does not export createStep`);
      kinds[kind] = mod.createStep;
    } catch (err) {
      issues.push({ path: `stepKinds.${kind}`, line: null, message: (err as Error).message });
    }
  }
  const steps: ChecklistStep[] = [];
  for (const [i, step] of parsed.policy.steps.entries()) {
    const line = parsed.stepLines[i] ?? null;
    const factory = kinds[step.kind];
    if (!factory) {
      issues.push({
        path: `steps.${i}.kind`,
        line,
        message: `unknown step kind ${step.kind} (known: ${Object.keys(kinds).join(', ')})`,
      });
      continue;
    }
    const {
      name,
      kind: _kind,
      when: _when,
      parallel: _parallel,
      timeout: _t,
      onTimeout: _o,
      ...options
    } = step;
    try {
      steps.push(new ChecklistStep(step, factory(options, deps, name)));
    } catch (err) {
      const message =
        err instanceof z.ZodError
          ? err.issues.map((x) => `${x.path.map(String).join('.') || 'options'}: ${x.message}`).join('; ')
          : (err as Error).message;
      issues.push({ path: `steps.${i}`, line, message: `${step.kind} step ${name}: ${message}` });
    }
  }
  const subscriptions: WebhookSubscription[] = [];
  for (const [i, n] of (parsed.policy.notifications ?? []).entries()) {
    try {
      subscriptions.push(buildSubscription(n, deps.env));
    } catch (err) {
      issues.push({
        path: `notifications.${i}`,
        line: parsed.notificationLines?.[i] ?? null,
        message: `notification ${n.name}: ${(err as Error).message}`,
      });
    }
  }
  if (issues.length > 0) throw new ApprovalPolicyInvalid(parsed.source, issues);
  return {
    steps,
    source: parsed.source.startsWith('<') ? null : parsed.source,
    policy: parsed.policy,
    subscriptions,
  };
}

/** The checklist without a policy file: NORM_APPROVAL_STEPS, as before this module existed. */
export function defaultChecklist(stepNames: readonly string[], deps: StepKindDeps): Checklist {
  return buildChecklist(
    {
      policy: { steps: stepNames.map((n) => ({ name: n, kind: n })) },
      source: '<NORM_APPROVAL_STEPS>',
      stepLines: [],
    },
    deps,
  );
}
