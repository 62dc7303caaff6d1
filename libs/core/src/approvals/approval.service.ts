import { randomUUID } from 'node:crypto';
import { authorize, authorizeObject } from '../identity/authorization';
import { type ActingContext } from '../identity/identity.service';
import { DomainError, NotFound, ValidationFailed } from '../errors';
import { type Clock, type NormMetrics, noMetrics } from '../ports';
import { type PlanEntry } from '../vm-requests/approval-pipeline';
import {
  type VmRequestRecord,
  type VmRequestTx,
  type VmRequestUnitOfWork,
} from '../vm-requests/vm-request.port';
import { type VmRequestService, view, type VmRequestView } from '../vm-requests/vm-request.service';
import { InvalidTransition } from '../vm-requests/vm-request.state';
import { type TimeoutAction } from './approval-policy';
import { type ApprovalQueue, type InboxItem } from './approval.port';
import { type Vote } from './quorum';
import {
  type Checklist,
  type ChecklistStep,
  ExternalStep,
  GroupStep,
  votesOf,
  WebhookStep,
} from './step-kinds';
import { callbackPayload, verifySignature } from './step-runners';
import { matchCondition } from './step-condition';

export interface DecisionInput {
  step: string;
  decision: 'approve' | 'reject';
  comment?: string | null | undefined;
}

export interface CallbackInput {
  decision: 'approve' | 'reject';
  reason?: string | null | undefined;
}

export interface PreviewInput {
  name: string;
  vcpus: number;
  memoryMb: number;
  diskGb: number;
  imageId?: string | null | undefined;
  networkId?: string | null | undefined;
  lifecycleClass: 'cattle' | 'pet';
  labels?: Record<string, string> | undefined;
}

export interface PreviewStep {
  step: string;
  kind: string;
  applies: boolean;
  why: string;
  /** For automatic steps that could be asked without side effects; `would_wait` for people and outside systems. */
  outcome: 'approve' | 'reject' | 'would_wait' | 'skipped';
  reason: string | null;
  groups: string[];
}

export interface PolicyView {
  source: string | null;
  steps: Array<{
    index: number;
    name: string;
    kind: string;
    automatic: boolean;
    parallel: boolean;
    when: unknown;
    timeout: number | null;
    onTimeout: TimeoutAction | null;
    options: Record<string, unknown>;
  }>;
}

export interface InboxEntry extends InboxItem {
  summary: string;
}

/** Comments and reasons are shown to people and stored in the audit; bounded like any text field. */
const MAX_COMMENT = 2000;

/**
 * Deciding: human votes, webhook callbacks and timers all write into the request's approval
 * plan and then re-run the pipeline through VmRequestService.evaluate, in one transaction
 * with an advisory lock per request and the versioned UPDATE. Two approvers at the same
 * instant are serialised: the second sees the first's vote, and only one of them can move
 * the request out of pending_approval.
 */
export class ApprovalService {
  constructor(
    private readonly uow: VmRequestUnitOfWork,
    private readonly requests: VmRequestService,
    private readonly checklist: Checklist,
    private readonly queue: ApprovalQueue,
    private readonly clock: Clock,
    private readonly metrics: NormMetrics = noMetrics,
  ) {}

  policy(ctx: ActingContext): PolicyView {
    authorize(ctx.subject, 'approvals:read');
    return {
      source: this.checklist.source,
      steps: this.checklist.steps.map((s, index) => {
        const { name, kind, when, parallel, timeout, onTimeout, ...options } = s.config;
        return {
          index,
          name,
          kind,
          automatic: s.kind === 'automatic',
          parallel: parallel === true,
          when: when ?? null,
          timeout: timeout ?? null,
          onTimeout: onTimeout ?? null,
          options,
        };
      }),
    };
  }

  /** Which steps would apply to a hypothetical request and what the automatic ones would say now. */
  async preview(ctx: ActingContext, input: PreviewInput): Promise<{ steps: PreviewStep[]; outcome: string }> {
    authorize(ctx.subject, 'approvals:read');
    if (ctx.subject.kind !== 'principal')
      throw new DomainError('Forbidden', 'only principals preview requests');
    const ownerId = ctx.subject.principal.id;
    return this.uow.run(async (tx) => {
      const groups = await tx.requests.ownerGroups(ownerId);
      const hypothetical = {
        id: randomUUID(),
        ownerId,
        name: input.name,
        vcpus: input.vcpus,
        memoryMb: input.memoryMb,
        diskGb: input.diskGb,
        lifecycleClass: input.lifecycleClass,
        labels: input.labels ?? {},
        imageId: input.imageId ?? null,
        networkId: input.networkId ?? null,
        antiAffinityGroup: null,
      };
      const subject = await this.requests.subjectOf(tx, hypothetical, groups);
      const steps: PreviewStep[] = [];
      for (const step of this.checklist.steps) {
        const m = matchCondition(step.config.when, subject);
        const base = { step: step.name, kind: step.config.kind, applies: m.applies, why: m.why };
        if (!m.applies) {
          steps.push({ ...base, outcome: 'skipped', reason: null, groups: [] });
          continue;
        }
        const d = await step.inner.evaluate(subject, {
          usage: (scope, exclude) => tx.requests.usage(scope, exclude),
          fits: () => this.requests.fits(tx, hypothetical),
          now: this.clock.now(),
          dryRun: true,
        });
        steps.push(
          d.decision === 'pending'
            ? { ...base, outcome: 'would_wait', reason: d.waitingOn, groups: [...(d.groups ?? [])] }
            : { ...base, outcome: d.decision, reason: d.reason ?? null, groups: [] },
        );
      }
      const outcome = steps.some((s) => s.outcome === 'reject')
        ? 'rejected'
        : steps.some((s) => s.outcome === 'would_wait')
          ? 'would_wait'
          : 'approved';
      return { steps, outcome };
    });
  }

  async decide(ctx: ActingContext, requestId: string, input: DecisionInput): Promise<VmRequestView> {
    authorize(ctx.subject, 'approvals:decide');
    if (ctx.subject.kind !== 'principal')
      throw new DomainError('Forbidden', 'only principals decide approvals');
    const principal = ctx.subject.principal;
    const comment = input.comment?.trim() || null;
    if (input.decision === 'reject' && comment === null)
      throw new ValidationFailed('a rejection needs a comment', [
        { path: 'comment', message: 'required when rejecting' },
      ]);
    if (comment !== null && comment.length > MAX_COMMENT)
      throw new ValidationFailed('the comment is too long', [
        { path: 'comment', message: `at most ${MAX_COMMENT} characters` },
      ]);
    return this.uow.run(async (tx) => {
      const r = await this.lockedPending(tx, ctx, requestId);
      const { entry, step } = this.waitingEntry(r, input.step);
      if (!(step.inner instanceof GroupStep))
        throw new DomainError(
          'Conflict',
          `step ${input.step} is decided by ${step.config.kind}, not by people`,
          {
            step: input.step,
          },
        );
      const mine = principal.groups.filter((g) => entry.groups.includes(g));
      if (mine.length === 0)
        throw new DomainError('Forbidden', `step ${input.step} waits on ${entry.groups.join(', ')}`, {
          step: input.step,
          groups: entry.groups,
        });
      // Rejecting one's own request is cancelling it, which has its own route; a vote would not count.
      if (principal.id === r.ownerId)
        throw new DomainError('Forbidden', 'the requester cannot decide on their own request', {
          step: input.step,
          reason: 'self-approval',
        });
      const votes = votesOf(entry);
      if (votes.some((v) => v.by === principal.id))
        throw new DomainError('Conflict', 'you already decided this step', { step: input.step });
      const vote: Vote = {
        by: principal.id,
        decision: input.decision,
        groups: mine,
        at: this.clock.now().toISOString(),
        comment,
      };
      await tx.audit.append({
        actor: principal.id,
        action: `approval.vote.${input.decision}`,
        objectType: 'vm-request',
        objectId: r.id,
        after: { step: input.step, decision: input.decision, groups: mine },
        reason: comment,
        requestId: ctx.requestId ?? null,
      });
      const plan = replaceEntry(r.approvalPlan, {
        ...entry,
        detail: { ...entry.detail, votes: [...votes, vote] },
      });
      return view(await this.reevaluate(tx, r, plan, principal.id, ctx.requestId ?? null));
    });
  }

  /**
   * A webhook system's late answer. Authenticated by the HMAC of the step's secret, not by a
   * token: the far side is a system, not a principal. Repeating the same answer is a no-op.
   */
  async callback(
    requestId: string,
    stepName: string,
    input: CallbackInput,
    signature: string | undefined,
  ): Promise<VmRequestView> {
    const step = this.checklist.steps.find((s) => s.name === stepName);
    if (!step || !(step.inner instanceof WebhookStep)) throw new NotFound('webhook step', stepName);
    const payload = callbackPayload(requestId, stepName, input.decision, input.reason);
    if (signature === undefined || !verifySignature(step.inner.secret, payload, signature))
      throw new DomainError('Unauthenticated', 'authentication required', {
        reason: 'bad callback signature',
      });
    return this.uow.run(async (tx) => {
      await tx.requests.lock(`approval:${requestId}`);
      const r = await tx.requests.get(requestId);
      if (!r) throw new NotFound('vm-request', requestId);
      const entry = r.approvalPlan.find((p) => p.step === stepName);
      const settled = entry?.detail['callback'] as CallbackInput | undefined;
      if (settled && settled.decision === input.decision) return view(r);
      if (r.state !== 'pending_approval' || !entry || entry.status !== 'pending')
        throw new InvalidTransition(
          'approval',
          `${requestId}/${stepName}`,
          entry?.status ?? r.state,
          input.decision,
        );
      const actor = `webhook:${stepName}`;
      await tx.audit.append({
        actor,
        action: `approval.callback.${input.decision}`,
        objectType: 'vm-request',
        objectId: r.id,
        after: { step: stepName, decision: input.decision },
        reason: input.reason ?? null,
        requestId: null,
      });
      const at = this.clock.now().toISOString();
      const plan = replaceEntry(r.approvalPlan, {
        ...entry,
        detail: { ...entry.detail, callback: { decision: input.decision, reason: input.reason ?? null, at } },
      });
      return view(await this.reevaluate(tx, r, plan, actor, null));
    });
  }

  /**
   * The ApprovalStepRun job: calls the outside step with no transaction open (a slow webhook or
   * command holds no lock and no connection), then records its answer and re-runs the pipeline.
   * A request that moved on, or a step already answered, ends the job quietly. A worker dying
   * between the call and the record means the call is made again: outside steps must tolerate
   * being asked twice.
   */
  async runExternalStep(requestId: string, stepName: string): Promise<'recorded' | 'gone'> {
    const step = this.checklist.steps.find((s) => s.name === stepName);
    if (!step || !(step.inner instanceof ExternalStep)) return 'gone';
    const external = step.inner;
    const waiting = (r: VmRequestRecord | undefined): PlanEntry | undefined => {
      const entry = r?.approvalPlan.find((p) => p.step === stepName);
      return r?.state === 'pending_approval' &&
        entry?.status === 'pending' &&
        entry.detail['result'] === undefined &&
        entry.detail['sentAt'] === undefined
        ? entry
        : undefined;
    };
    const prepared = await this.uow.run(async (tx) => {
      const r = await tx.requests.get(requestId);
      const entry = waiting(r);
      if (!r || !entry) return undefined;
      const subject = await this.requests.subjectOf(tx, r, await tx.requests.ownerGroups(r.ownerId));
      return { subject, detail: entry.detail };
    });
    if (!prepared) return 'gone';
    const d = await external.run(prepared.subject, prepared.detail, this.clock.now());
    return this.uow.run(async (tx) => {
      await tx.requests.lock(`approval:${requestId}`);
      const r = await tx.requests.get(requestId);
      const entry = waiting(r);
      if (!r || !entry) return 'gone';
      const detail =
        d.decision === 'pending'
          ? { ...entry.detail, ...(d.detail ?? {}) }
          : {
              ...entry.detail,
              result: { decision: d.decision, reason: d.reason ?? null, detail: d.detail ?? {} },
            };
      const actor = `system:step:${stepName}`;
      await tx.audit.append({
        actor,
        action: `approval.external.${d.decision}`,
        objectType: 'vm-request',
        objectId: r.id,
        after: { step: stepName, decision: d.decision, detail: d.detail ?? {} },
        reason: d.decision === 'pending' ? null : (d.reason ?? null),
        requestId: null,
      });
      await this.reevaluate(tx, r, replaceEntry(r.approvalPlan, { ...entry, detail }), actor, null);
      return 'recorded';
    });
  }

  /** What waits on the caller's groups, oldest first; their own requests and steps they voted on are left out. */
  async inbox(ctx: ActingContext, limit = 100): Promise<InboxEntry[]> {
    authorize(ctx.subject, 'approvals:read');
    if (ctx.subject.kind !== 'principal') return [];
    const me = ctx.subject.principal;
    if (me.groups.length === 0) return [];
    const items = await this.queue.inbox(me.groups, limit);
    return items
      .filter(
        (i) => i.ownerId !== me.id && !votesOf({ detail: i.detail } as PlanEntry).some((v) => v.by === me.id),
      )
      .map((i) => {
        const remaining = typeof i.detail['remaining'] === 'number' ? i.detail['remaining'] : null;
        return {
          ...i,
          summary: `${i.requestName}: ${i.step} for ${i.groups.join(', ')}${
            remaining === null ? '' : `, ${remaining} more approval${remaining === 1 ? '' : 's'} needed`
          }`,
        };
      });
  }

  /**
   * Fires every step timer due at `now`, once: the action moves or clears the timer in the same
   * transaction, so after downtime each overdue step acts once rather than once per missed period.
   */
  async fireDueTimers(now: Date, batch = 50): Promise<{ fired: number }> {
    const ids = await this.queue.dueRequests(now, batch);
    let fired = 0;
    for (const id of ids) {
      fired += await this.uow.run(async (tx) => {
        await tx.requests.lock(`approval:${id}`);
        const r = await tx.requests.get(id);
        if (!r || r.state !== 'pending_approval') return 0;
        let plan = r.approvalPlan;
        let count = 0;
        const fired: Array<{ step: string; action: string }> = [];
        for (const entry of r.approvalPlan) {
          const dueAt = entry.detail['dueAt'];
          if (entry.status !== 'pending' || typeof dueAt !== 'string' || Date.parse(dueAt) > now.getTime())
            continue;
          const step = this.checklist.steps.find((s) => s.name === entry.step);
          const action = step?.config.onTimeout;
          if (!step || !action) continue;
          plan = replaceEntry(plan, timedOut(entry, step, action, now));
          count++;
          fired.push({ step: entry.step, action: action.action });
          await tx.audit.append({
            actor: 'system:approval-timeout',
            action: `approval.timeout.${action.action}`,
            objectType: 'vm-request',
            objectId: r.id,
            after: { step: entry.step, action: action.action, dueAt },
            reason: `no decision by ${dueAt}`,
            requestId: null,
          });
        }
        if (count > 0) await this.reevaluate(tx, r, plan, 'system:approval-timeout', null);
        tx.afterCommit(() => {
          for (const f of fired) this.metrics.approvalTimerFired(f.step, f.action);
        });
        return count;
      });
    }
    return { fired };
  }

  private async lockedPending(tx: VmRequestTx, ctx: ActingContext, id: string): Promise<VmRequestRecord> {
    // Serialises deciders of one request, so votes are counted on the latest plan.
    await tx.requests.lock(`approval:${id}`);
    const r = await tx.requests.get(id);
    if (!r) throw new NotFound('vm-request', id);
    authorizeObject(ctx.subject, 'approvals:read', { ownerId: r.ownerId }, 'vm-request', id);
    if (r.state !== 'pending_approval')
      throw new InvalidTransition(
        'vm-request',
        id,
        r.state,
        'decided',
        `the request is ${r.state}, not pending approval`,
      );
    return r;
  }

  private waitingEntry(r: VmRequestRecord, stepName: string): { entry: PlanEntry; step: ChecklistStep } {
    const entry = r.approvalPlan.find((p) => p.step === stepName);
    const step = this.checklist.steps.find((s) => s.name === stepName);
    if (!entry || !step) throw new NotFound('approval step', stepName);
    if (entry.status !== 'pending')
      throw new InvalidTransition(
        'approval',
        `${r.id}/${stepName}`,
        entry.status,
        'decided',
        entry.status === 'not_reached'
          ? `step ${stepName} is not reached yet: earlier steps decide first`
          : `step ${stepName} is already ${entry.status}`,
      );
    return { entry, step };
  }

  private async reevaluate(
    tx: VmRequestTx,
    r: VmRequestRecord,
    plan: PlanEntry[],
    actor: string,
    requestId: string | null,
  ): Promise<VmRequestRecord> {
    const groups = await tx.requests.ownerGroups(r.ownerId);
    return this.requests.evaluate(tx, { ...r, approvalPlan: plan }, groups, actor, requestId, r);
  }
}

function replaceEntry(plan: readonly PlanEntry[], entry: PlanEntry): PlanEntry[] {
  return plan.map((p) => (p.index === entry.index ? entry : p));
}

/** The entry after its timer fired; the step reads `timeoutFired` on its next evaluation. */
function timedOut(entry: PlanEntry, step: ChecklistStep, action: TimeoutAction, now: Date): PlanEntry {
  const log = Array.isArray(entry.detail['timeoutLog']) ? (entry.detail['timeoutLog'] as unknown[]) : [];
  const detail = { ...entry.detail, timeoutLog: [...log, { action: action.action, at: now.toISOString() }] };
  switch (action.action) {
    case 'expire':
    case 'approve':
      return { ...entry, detail: { ...detail, timeoutFired: action.action, dueAt: null } };
    case 'escalate':
      // Escalation happens once; afterwards the step waits on the wider set of groups without a timer.
      return {
        ...entry,
        groups: [...new Set([...entry.groups, ...action.groups])],
        detail: { ...detail, escalated: action.groups, dueAt: null },
      };
    case 'remind': {
      const reminders = typeof entry.detail['reminders'] === 'number' ? entry.detail['reminders'] : 0;
      const next = new Date(now.getTime() + (step.config.timeout ?? 0)).toISOString();
      return { ...entry, detail: { ...detail, reminders: reminders + 1, dueAt: next } };
    }
  }
}
