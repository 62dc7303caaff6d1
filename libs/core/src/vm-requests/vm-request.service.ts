import { createHash, randomUUID } from 'node:crypto';
import { authorize, authorizeObject, ownerFilter } from '../identity/authorization';
import { type ActingContext } from '../identity/identity.service';
import { actorOf } from '../identity/principal';
import { DomainError, NotFound, ValidationFailed, Conflict } from '../errors';
import { jobIdFor } from '../jobs';
import {
  DEFAULT_HEARTBEAT_TIMEOUT_BOUNDS,
  type HeartbeatTimeoutBounds,
  heartbeatTimeoutProblem,
} from '../lifecycle/heartbeat';
import { type Clock, type NormMetrics, noMetrics } from '../ports';
import { approvalEvents, decidedSteps, type PlanChange } from '../notifications/approval-events';
import { recordApprovalEvents } from '../notifications/approval-notifier';
import { type WebhookSubscription } from '../notifications/webhook-subscriptions';
import {
  type PlacementOptions,
  type PlacementPlan,
  type PlacementRequest,
  planPlacement,
  withPlaced,
} from '../placement/placement';
import { placementInput } from '../placement/placement.service';
import { type AntiAffinityMode } from '../placement/placement';
import { type MustAct, whoMustAct } from '../approvals/who-must-act';
import {
  type ApprovalContext,
  type ApprovalStep,
  type ApprovalSubject,
  evaluatePipeline,
  type PipelineOutcome,
  type PlanEntry,
  type QuotaUsage,
  type UsageScope,
} from './approval-pipeline';
import { type AuditEventInput } from '../audit/audit.port';
import { type NewOutboxJob } from '../outbox';
import {
  type AdmissionFacts,
  type AdmittedEntry,
  type HistoryEntry,
  type ListFilter,
  type Page,
  type VmRequestPatch,
  type VmRequestRecord,
  type VmRequestTx,
  type VmRequestUnitOfWork,
} from './vm-request.port';
import { assertTransition, InvalidTransition, type VmRequestState } from './vm-request.state';
import { type BatchKeys, type BatchOutcome, KeyedBatcher } from './keyed-batcher';

/** Who places: the provision job's first step. */
const PLACEMENT = 'system:placement';
/** How many waiting requests one placement pass decides. */
const PLACEMENT_BATCH = 200;
/** Who decides the automatic steps, and the history's reason when every step approved. */
const APPROVAL = 'system:approval';
const APPROVED = 'every approval step approved';

/** Printable and bounded: the key is stored and compared, never interpreted. */
const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,200}$/;

export interface VmRequestInput {
  name: string;
  vcpus: number;
  memoryMb: number;
  diskGb: number;
  imageId: string;
  networkId: string;
  lifecycleClass: 'cattle' | 'pet';
  antiAffinityGroup?: string | null | undefined;
  labels?: Record<string, string> | undefined;
  purpose?: string | null | undefined;
  /** The instance's own heartbeat timeout (ms, parsed from `"5m"`); absent uses its class's. */
  heartbeatTimeoutMs?: number | undefined;
}

export interface SizeBounds {
  maxVcpus: number;
  maxMemoryMb: number;
  maxDiskGb: number;
  minMemoryMb: number;
}

export interface VmRequestServiceOptions {
  bounds: SizeBounds;
  /** Where a requested heartbeat timeout must lie; absent, the settings' defaults. */
  heartbeatTimeoutBounds?: HeartbeatTimeoutBounds;
  placement: PlacementOptions & { antiAffinityMode: AntiAffinityMode };
}

export interface VmRequestView extends Omit<VmRequestRecord, 'requestHash' | 'idempotencyKey'> {
  /** While pending: the step it waits on and who may act, so "who must act now" has an answer. */
  waitingOn: { step: string; waitingOn: string | null; groups: string[] } | null;
  /** Every step waiting now (parallel steps wait together), with who can act and by when. */
  mustAct: MustAct[];
}

/** What the service tells the outside about approvals: webhooks (recorded in the transaction) and metrics. */
export interface VmRequestObservers {
  subscriptions?: readonly WebhookSubscription[];
  metrics?: NormMetrics;
}

/** The image and network a request names, when the caller has just read them in this transaction. */
interface KnownReferences {
  image: { name: string };
  network: { name: string };
}

/** A creation waiting for its batch: what it was asked, and by whom. */
interface Admission {
  ctx: ActingContext;
  ownerId: string;
  input: VmRequestInput;
  hash: string;
  idempotencyKey: string | undefined;
  /** The owner's groups as last known: their quota locks are taken with the others. */
  groups: string[];
}

/**
 * What a creation locks: its Idempotency-Key, so a replay waits for the original; its name, so
 * two requests cannot both take it; its owner and groups, so quotas count every earlier
 * request. The first two are its own in a batch; requests of one owner or group may share a
 * batch, whose quota counting adds the earlier ones (see `admitBatch`).
 */
function admissionKeys(a: Admission): BatchKeys {
  return {
    own: [
      ...(a.idempotencyKey === undefined ? [] : [`idem:${a.ownerId}:${a.idempotencyKey}`]),
      `name:${a.input.name}`,
    ],
    shared: [`owner:${a.ownerId}`, ...a.groups.map((g) => `group:${g}`)],
  };
}

function allKeys(keys: BatchKeys): string[] {
  return [...keys.own, ...keys.shared];
}

/** A request admitted earlier in the same batch, as quota counting sees it. */
interface Counted {
  ownerId: string;
  groups: readonly string[];
  vcpus: number;
  memoryMb: number;
}

/** What the requests admitted earlier in a batch add to a scope's usage (not yet visible to reads). */
function withEarlier(used: QuotaUsage, scope: UsageScope, earlier: readonly Counted[]): QuotaUsage {
  let { instances, vcpus, memoryMb } = used;
  for (const c of earlier)
    if ('ownerId' in scope ? c.ownerId === scope.ownerId : c.groups.includes(scope.group)) {
      instances += 1;
      vcpus += c.vcpus;
      memoryMb += c.memoryMb;
    }
  return { instances, vcpus, memoryMb };
}

export interface CreateResult {
  request: VmRequestView;
  /** True when an Idempotency-Key replay returned the original request. */
  replayed: boolean;
}

/**
 * VM requests from creation to approval and placement. Every state change goes through
 * `transition` (the table in vm-request.state.ts plus a versioned UPDATE) and commits with
 * its audit event; approval and the provision job commit in one transaction, so an approved
 * request always has its job, and the job places it (`place`) or records why no host could.
 */
export class VmRequestService {
  /**
   * Concurrent creations share transactions (never two of one name or Idempotency-Key): while
   * one runs, creations queue, and the next takes them all. A second may run beside it once 8
   * are waiting (and hold no key the first holds): under load, one transaction's statements
   * then overlap the other's turns in this process (on bench/api Postgres was otherwise idle in
   * the transaction, waiting for the API, 38 % of its time). Without that floor a free slot took
   * each arrival alone, and Postgres paid for many small commits (four at a time used about
   * twice its CPU per request). Requests of another replica holding the same owner's lock make
   * this one wait, and only as long as that transaction lasts.
   */
  private readonly admissions = new KeyedBatcher<Admission, CreateResult>(
    admissionKeys,
    (batch) => this.admitBatch(batch),
    { maxInFlight: 2, maxBatch: 64, minBatchAlongside: 8 },
  );

  constructor(
    private readonly uow: VmRequestUnitOfWork,
    private readonly steps: readonly ApprovalStep[],
    private readonly clock: Clock,
    private readonly options: VmRequestServiceOptions,
    private readonly observers: VmRequestObservers = {},
  ) {}

  async create(ctx: ActingContext, input: VmRequestInput, idempotencyKey?: string): Promise<CreateResult> {
    authorize(ctx.subject, 'vm-requests:create');
    if (ctx.subject.kind !== 'principal') throw new DomainError('Forbidden', 'only principals request VMs');
    const ownerId = ctx.subject.principal.id;
    this.checkBounds(input);
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey))
      throw new ValidationFailed('the Idempotency-Key header is invalid', [
        { path: 'Idempotency-Key', message: 'letters, digits and . _ : -, 1 to 200 characters' },
      ]);
    return this.admissions.submit({
      ctx,
      ownerId,
      input,
      hash: requestHash(input),
      idempotencyKey,
      groups: [...ctx.subject.principal.groups].sort(),
    });
  }

  /**
   * One transaction for a batch of creations, no two with one name or Idempotency-Key (see
   * KeyedBatcher): every request's locks and admission reads in one call, each pipeline in
   * memory and in order (quota counting adds the requests decided before it in the batch),
   * then every admitted request with its approval steps, jobs and audit events in one
   * statement, and one commit (which chains the events). What a request's own facts refuse (a
   * replayed or conflicting Idempotency-Key, a missing image, a taken name) fails that request
   * alone; one whose owner's groups changed since it was queued is queued again with the
   * groups read.
   */
  private async admitBatch(batch: readonly Admission[]): Promise<Array<BatchOutcome<CreateResult>>> {
    return this.uow.run(async (tx) => {
      const facts = await tx.requests.admission(
        batch.map((a) => ({
          locks: allKeys(admissionKeys(a)),
          ownerId: a.ownerId,
          idempotencyKey: a.idempotencyKey ?? null,
          name: a.input.name,
          imageId: a.input.imageId,
          networkId: a.input.networkId,
        })),
      );
      const outcomes: Array<BatchOutcome<CreateResult>> = [];
      const admitted: Array<{ at: number; entry: AdmittedEntry; change: PlanChange }> = [];
      const counted: Counted[] = [];
      for (const [i, a] of batch.entries()) {
        try {
          const own = facts[i]!;
          const decided = await this.decide(tx, a, own, counted);
          if (!('entry' in decided)) outcomes[i] = decided;
          else {
            admitted.push({ at: i, ...decided });
            const r = decided.entry.request;
            // Rejected requests count against no quota; the others do from now on.
            if (r.state !== 'rejected')
              counted.push({
                ownerId: r.ownerId,
                groups: own.ownerGroups,
                vcpus: r.vcpus,
                memoryMb: r.memoryMb,
              });
          }
        } catch (error) {
          // Refused by its own facts: nothing of it was written, the others go on.
          if (!(error instanceof DomainError)) throw error;
          outcomes[i] = { kind: 'failed', error };
        }
      }
      // Approval webhooks are the only writes after the insert (their rows refer to the
      // requests'); without them the insert is the last statement, and the commit goes with it.
      const webhooks = (this.observers.subscriptions ?? []).length > 0;
      const created = await tx.requests.insertAdmitted(
        admitted.map((a) => a.entry),
        { last: !webhooks },
      );
      for (const [j, { at, change }] of admitted.entries()) {
        const r = created[j]!;
        await this.observe(tx, r, change, r.state);
        outcomes[at] = { kind: 'done', value: { request: view(r), replayed: false } };
      }
      return outcomes;
    });
  }

  /**
   * One request of a batch, from its facts (read under its locks): replayed, refused (thrown),
   * queued again under the groups read, or decided by the pipeline and ready to insert.
   */
  private async decide(
    tx: VmRequestTx,
    a: Admission,
    facts: AdmissionFacts,
    earlier: readonly Counted[],
  ): Promise<BatchOutcome<CreateResult> | { entry: AdmittedEntry; change: PlanChange }> {
    const { ctx, ownerId, input, idempotencyKey } = a;
    if (idempotencyKey !== undefined && facts.originalId !== null) {
      const original = await tx.requests.get(facts.originalId);
      if (original && original.requestHash !== a.hash)
        throw new DomainError(
          'IdempotencyConflict',
          'this Idempotency-Key was used with a different request body',
          {
            idempotencyKey,
            requestId: original.id,
          },
        );
      if (original) return { kind: 'done', value: { request: view(original), replayed: true } };
    }
    const references = checkReferences(input, facts);
    if (facts.nameTaken)
      throw new Conflict('the name is taken by a live instance or a request in flight', {
        field: 'name',
        name: input.name,
      });
    if (facts.ownerGroups.some((g) => !a.groups.includes(g))) {
      // Membership changed since the request was authenticated: its quota locks must cover the
      // groups as they are now, so it runs again under them.
      a.groups = facts.ownerGroups;
      return { kind: 'again' };
    }

    const actor = actorOf(ctx.subject);
    const requestId = ctx.requestId ?? null;
    const now = this.clock.now();
    const draft: VmRequestRecord = {
      id: randomUUID(),
      name: input.name,
      ownerId,
      vcpus: input.vcpus,
      memoryMb: input.memoryMb,
      diskGb: input.diskGb,
      imageId: input.imageId,
      networkId: input.networkId,
      lifecycleClass: input.lifecycleClass,
      antiAffinityGroup: input.antiAffinityGroup ?? null,
      labels: input.labels ?? {},
      purpose: input.purpose ?? null,
      heartbeatTimeoutS:
        input.heartbeatTimeoutMs === undefined ? null : Math.round(input.heartbeatTimeoutMs / 1000),
      state: 'pending_approval',
      stateReason: null,
      idempotencyKey: idempotencyKey ?? null,
      requestHash: a.hash,
      hostId: null,
      approvalPlan: [],
      history: [this.entry(null, 'pending_approval', actor, 'requested')],
      error: null,
      version: 0,
      createdAt: now,
      updatedAt: now,
    };
    const jobs: NewOutboxJob[] = [];
    const result = await this.runPipeline(
      tx,
      draft,
      facts.ownerGroups,
      async (scope, exclude) =>
        withEarlier(
          'ownerId' in scope && scope.ownerId === ownerId
            ? facts.ownerUsage
            : await tx.requests.usage(scope, exclude),
          scope,
          earlier,
        ),
      (step) => {
        jobs.push(approvalStepJob(draft.id, step));
        return Promise.resolve();
      },
      now,
      references,
    );
    const settled = this.settle(draft, result, APPROVAL);
    if (settled.state === 'approved') jobs.push(provisionJob(draft.id));
    return {
      entry: {
        request: { ...draft, ...settled, imageId: input.imageId, networkId: input.networkId },
        jobs,
        audit: [
          {
            actor,
            action: 'vm-request.create',
            objectType: 'vm-request',
            objectId: draft.id,
            after: auditView(draft),
            requestId,
          },
          ...decisionEvents(draft, result.plan, APPROVAL, requestId),
        ],
      },
      change: {
        requestName: draft.name,
        before: [],
        after: result.plan,
        outcome: result.outcome,
        reason: result.reason,
        actor: APPROVAL,
        now,
      },
    };
  }

  async get(ctx: ActingContext, id: string): Promise<VmRequestView> {
    const r = await this.uow.read((db) => db.requests.get(id));
    if (!r) throw new NotFound('vm-request', id);
    authorizeObject(ctx.subject, 'vm-requests:read', { ownerId: r.ownerId }, 'vm-request', id);
    return view(r);
  }

  async list(ctx: ActingContext, filter: ListFilter): Promise<Page<VmRequestView>> {
    const own = ownerFilter(ctx.subject, 'vm-requests:read');
    if (own !== undefined && filter.ownerId !== undefined && filter.ownerId !== own) return { items: [] };
    const page = await this.uow.read((db) => db.requests.list({ ...filter, ownerId: own ?? filter.ownerId }));
    return { ...page, items: page.items.map(view) };
  }

  /**
   * Cancels while no provisioning has begun. Racing an approval or the provision job is safe:
   * whichever versioned UPDATE lands second sees the version moved and gets InvalidTransition
   * with the state that won.
   */
  async cancel(ctx: ActingContext, id: string, reason?: string): Promise<VmRequestView> {
    return this.uow.run(async (tx) => {
      const r = await tx.requests.get(id);
      if (!r) throw new NotFound('vm-request', id);
      authorizeObject(ctx.subject, 'vm-requests:act', { ownerId: r.ownerId }, 'vm-request', id);
      const actor = actorOf(ctx.subject);
      const after = await this.transition(tx, r, 'cancelled', actor, reason ?? 'cancelled by request', {
        stateReason: reason ?? 'cancelled',
      });
      await tx.audit.append({
        actor,
        action: 'vm-request.cancel',
        objectType: 'vm-request',
        objectId: id,
        before: { state: r.state },
        after: { state: after.state },
        reason: reason ?? null,
        requestId: ctx.requestId ?? null,
      });
      return view(after);
    });
  }

  /**
   * Runs the pipeline on a pending request and acts on the outcome: approve (then place and
   * enqueue), reject, or leave it waiting. Public so a human decision (approvals issue) can
   * re-run it in its own transaction. `stored` is the row as read before the caller changed
   * its plan (a vote, a timer), so notifications and metrics see what this change did.
   */
  async evaluate(
    tx: VmRequestTx,
    r: VmRequestRecord,
    ownerGroups: readonly string[],
    actor: string,
    requestId: string | null,
    stored: VmRequestRecord = r,
    references?: KnownReferences,
  ): Promise<VmRequestRecord> {
    const now = this.clock.now();
    const result = await this.runPipeline(
      tx,
      r,
      ownerGroups,
      (scope, exclude) => tx.requests.usage(scope, exclude),
      // Outside calls never run while this transaction holds the request's locks.
      async (step) => {
        const job = approvalStepJob(r.id, step);
        await tx.outbox.enqueue(job.name, job.jobId, job.payload);
      },
      now,
      references,
    );
    await tx.requests.saveApprovals(r.id, result.plan);
    for (const event of decisionEvents(r, result.plan, actor, requestId)) await tx.audit.append(event);
    await this.observe(
      tx,
      r,
      {
        requestName: r.name,
        before: stored.approvalPlan,
        after: result.plan,
        outcome: result.outcome,
        reason: result.reason,
        actor,
        now,
      },
      result.outcome === 'pending' ? 'pending_approval' : result.outcome,
    );
    switch (result.outcome) {
      case 'pending': {
        const updated = await tx.requests.update(r.id, r.version, { approvalPlan: result.plan });
        if (!updated) throw await this.lost(tx, r, 'pending_approval');
        return updated;
      }
      case 'rejected':
        return this.transition(tx, r, 'rejected', actor, result.reason, {
          approvalPlan: result.plan,
          stateReason: result.reason,
        });
      case 'approved': {
        const approved = await this.transition(tx, r, 'approved', actor, APPROVED, {
          approvalPlan: result.plan,
        });
        const job = provisionJob(r.id);
        await tx.outbox.enqueue(job.name, job.jobId, job.payload);
        return approved;
      }
    }
  }

  /** The pipeline over a request's subject, with the quota's usage and the capacity step's question. */
  private async runPipeline(
    tx: VmRequestTx,
    r: VmRequestRecord,
    ownerGroups: readonly string[],
    usage: ApprovalContext['usage'],
    defer: (step: string) => Promise<void>,
    now: Date,
    references: KnownReferences | undefined,
  ): Promise<PipelineOutcome> {
    return evaluatePipeline(
      this.steps,
      await this.subjectOf(tx, r, ownerGroups, references),
      { usage, fits: () => this.fits(tx, r), previousPlan: r.approvalPlan, defer },
      now,
    );
  }

  /**
   * Where a request not yet written ends up after its first evaluation: the same transitions
   * (checked against the same table) and history as `evaluate`, applied before the insert.
   */
  private settle(
    draft: VmRequestRecord,
    result: PipelineOutcome,
    actor: string,
  ): Pick<VmRequestRecord, 'state' | 'stateReason' | 'approvalPlan' | 'history'> {
    const plan = { approvalPlan: result.plan };
    if (result.outcome === 'pending')
      return { ...plan, state: draft.state, stateReason: null, history: draft.history };
    const to = result.outcome;
    const reason = to === 'approved' ? APPROVED : result.reason;
    assertTransition(draft.id, draft.state, to);
    return {
      ...plan,
      state: to,
      stateReason: to === 'rejected' ? result.reason : null,
      history: [...draft.history, this.entry(draft.state, to, actor, reason)],
    };
  }

  /** Notifications into the transaction, step durations after its commit. */
  private async observe(
    tx: VmRequestTx,
    r: VmRequestRecord,
    change: PlanChange,
    state: VmRequestState,
  ): Promise<void> {
    const subscriptions = this.observers.subscriptions ?? [];
    if (subscriptions.length > 0)
      await recordApprovalEvents(
        tx.webhookDeliveries,
        subscriptions,
        { id: r.id, name: r.name, ownerId: r.ownerId, lifecycleClass: r.lifecycleClass, state },
        approvalEvents(change),
        change.now,
      );
    const metrics = this.observers.metrics ?? noMetrics;
    const decided = decidedSteps(change);
    if (decided.length > 0)
      tx.afterCommit(() => {
        for (const d of decided) metrics.approvalStepDecided(d.step, d.outcome, d.seconds);
      });
  }

  /**
   * Chooses the host of an approved request, under the placement lock, in the caller's
   * transaction: the host's capacity is promised from the moment host_id is set. The same pass
   * places every other approved request waiting with the same anti-affinity group (oldest
   * first, up to PLACEMENT_BATCH), each decision seeing the ones before it, so a burst of
   * provision jobs takes the lock once instead of queueing on it one by one; their jobs then
   * find them placed. A request no host fits fails with PlacementImpossible and every host's
   * reasons. Already placed (a retried job): returned as it is.
   */
  async place(tx: VmRequestTx, r: VmRequestRecord): Promise<VmRequestRecord> {
    if (r.state !== 'approved' || r.hostId !== null) return r;
    await tx.lockPlacement();
    // Read under the lock: another job's pass may have placed this one meanwhile.
    const waiting = await tx.requests.listUnplaced(r.antiAffinityGroup, r.id, PLACEMENT_BATCH);
    if (waiting[0]?.id !== r.id) return (await tx.requests.get(r.id)) ?? r;
    const { antiAffinityMode, ...options } = this.options.placement;
    let hosts = await placementInput(tx, r.antiAffinityGroup);
    const placed: Array<{ id: string; version: number; hostId: string; hostName: string }> = [];
    let self: VmRequestRecord | undefined;
    for (const w of waiting) {
      const ask = placementRequest(w, antiAffinityMode);
      const plan = planPlacement(ask, hosts, options);
      if (!plan.chosen) {
        const failed = await this.failPlacement(tx, w, plan);
        if (w.id === r.id) self = failed;
        continue;
      }
      const chosen = plan.chosen;
      placed.push({ id: w.id, version: w.version, hostId: chosen.hostId, hostName: chosen.hostName });
      hosts = hosts.map((h) => (h.id === chosen.hostId ? withPlaced(h, ask) : h));
    }
    const updated = await tx.requests.placeMany(placed);
    const names = new Map(placed.map((p) => [p.id, p.hostName]));
    for (const u of updated)
      await tx.audit.append({
        actor: PLACEMENT,
        action: 'vm-request.place',
        objectType: 'vm-request',
        objectId: u.id,
        after: { hostId: u.hostId, hostName: names.get(u.id) },
      });
    return updated.find((u) => u.id === r.id) ?? self ?? (await tx.requests.get(r.id)) ?? r;
  }

  private async failPlacement(
    tx: VmRequestTx,
    r: VmRequestRecord,
    plan: PlacementPlan,
  ): Promise<VmRequestRecord> {
    const reason = plan.reason ?? 'no host can take this request';
    const failed = await this.transition(tx, r, 'failed', PLACEMENT, reason, {
      stateReason: reason,
      error: { code: 'PlacementImpossible', message: reason, hosts: plan.rejected },
    });
    await tx.audit.append({
      actor: PLACEMENT,
      action: 'vm-request.fail',
      objectType: 'vm-request',
      objectId: r.id,
      after: { state: 'failed', error: 'PlacementImpossible' },
      reason,
    });
    return failed;
  }

  /** What the checklist's conditions and plug-ins see of a request (ids and names of image and network). */
  async subjectOf(
    tx: VmRequestTx,
    r: Pick<
      VmRequestRecord,
      | 'id'
      | 'name'
      | 'ownerId'
      | 'vcpus'
      | 'memoryMb'
      | 'diskGb'
      | 'lifecycleClass'
      | 'labels'
      | 'imageId'
      | 'networkId'
    >,
    ownerGroups: readonly string[],
    known?: KnownReferences,
  ): Promise<ApprovalSubject> {
    const image = r.imageId === null ? undefined : (known?.image ?? (await tx.images.get(r.imageId)));
    const network =
      r.networkId === null ? undefined : (known?.network ?? (await tx.networks.get(r.networkId)));
    return {
      id: r.id,
      name: r.name,
      ownerId: r.ownerId,
      ownerGroups,
      vcpus: r.vcpus,
      memoryMb: r.memoryMb,
      diskGb: r.diskGb,
      lifecycleClass: r.lifecycleClass,
      labels: r.labels,
      imageId: r.imageId,
      imageName: image?.name ?? null,
      networkId: r.networkId,
      networkName: network?.name ?? null,
    };
  }

  /** The capacity step's question: could placement fit this request right now? */
  async fits(
    tx: VmRequestTx,
    r: Pick<VmRequestRecord, 'memoryMb' | 'vcpus' | 'diskGb' | 'antiAffinityGroup'>,
  ): Promise<{ fits: boolean; reason: string | null; detail: Record<string, unknown> }> {
    const plan = await this.plan(tx, r);
    return plan.chosen
      ? { fits: true, reason: null, detail: { host: plan.chosen.hostName } }
      : {
          fits: false,
          reason: plan.reason ?? 'no host can take this request',
          detail: { hosts: plan.rejected },
        };
  }

  private async plan(
    tx: VmRequestTx,
    r: Pick<VmRequestRecord, 'memoryMb' | 'vcpus' | 'diskGb' | 'antiAffinityGroup'>,
  ): Promise<PlacementPlan> {
    const hosts = await placementInput(tx, r.antiAffinityGroup);
    const { antiAffinityMode, ...options } = this.options.placement;
    return planPlacement(placementRequest(r, antiAffinityMode), hosts, options);
  }

  /** The one way a request changes state: the table, then the versioned UPDATE. */
  async transition(
    tx: VmRequestTx,
    r: VmRequestRecord,
    to: VmRequestState,
    by: string,
    reason: string | null,
    patch: Omit<VmRequestPatch, 'state' | 'appendHistory'> = {},
  ): Promise<VmRequestRecord> {
    assertTransition(r.id, r.state, to);
    const updated = await tx.requests.update(r.id, r.version, {
      ...patch,
      state: to,
      appendHistory: this.entry(r.state, to, by, reason),
    });
    if (!updated) throw await this.lost(tx, r, to);
    if (to === 'running') {
      const metrics = this.observers.metrics ?? noMetrics;
      // created_at is Postgres's clock: a little skew must not make a negative duration.
      const seconds = Math.max(0, (this.clock.now().getTime() - r.createdAt.getTime()) / 1000);
      tx.afterCommit(() => metrics.requestRunning(r.lifecycleClass, seconds));
    }
    return updated;
  }

  private async lost(tx: VmRequestTx, r: VmRequestRecord, wanted: string): Promise<InvalidTransition> {
    const now = await tx.requests.get(r.id);
    return new InvalidTransition(
      'vm-request',
      r.id,
      now?.state ?? 'gone',
      wanted,
      `the request changed concurrently; it is now ${now?.state ?? 'gone'}`,
    );
  }

  private entry(
    from: VmRequestState | null,
    to: VmRequestState,
    by: string,
    reason: string | null,
  ): HistoryEntry {
    return { from, to, at: this.clock.now().toISOString(), by, reason };
  }

  private checkBounds(input: VmRequestInput): void {
    const b = this.options.bounds;
    const issues: Array<{ path: string; message: string }> = [];
    if (input.vcpus > b.maxVcpus) issues.push({ path: 'vcpus', message: `at most ${b.maxVcpus}` });
    if (input.memoryMb > b.maxMemoryMb)
      issues.push({ path: 'memoryMb', message: `at most ${b.maxMemoryMb}` });
    if (input.memoryMb < b.minMemoryMb)
      issues.push({ path: 'memoryMb', message: `at least ${b.minMemoryMb}` });
    if (input.diskGb > b.maxDiskGb) issues.push({ path: 'diskGb', message: `at most ${b.maxDiskGb}` });
    if (input.heartbeatTimeoutMs !== undefined) {
      const problem = heartbeatTimeoutProblem(
        input.heartbeatTimeoutMs,
        this.options.heartbeatTimeoutBounds ?? DEFAULT_HEARTBEAT_TIMEOUT_BOUNDS,
      );
      if (problem) issues.push({ path: 'heartbeatTimeout', message: problem });
    }
    if (issues.length > 0) throw new ValidationFailed('the request is outside the allowed sizes', issues);
  }
}

/** The image and network must exist (and the disk fit the image); returns them for the pipeline's subject. */
function checkReferences(
  input: VmRequestInput,
  facts: Pick<AdmissionFacts, 'image' | 'network'>,
): KnownReferences {
  const { image, network } = facts;
  const issues: Array<{ path: string; message: string }> = [];
  if (!image) issues.push({ path: 'imageId', message: 'no such image' });
  else if (input.diskGb < image.defaultDiskGb)
    issues.push({ path: 'diskGb', message: `the image needs at least ${image.defaultDiskGb} GB` });
  if (!network) issues.push({ path: 'networkId', message: 'no such network' });
  if (issues.length > 0 || !image || !network)
    throw new ValidationFailed('the request names something that does not exist', issues);
  return { image, network };
}

function placementRequest(
  r: Pick<VmRequestRecord, 'memoryMb' | 'vcpus' | 'diskGb' | 'antiAffinityGroup'>,
  mode: AntiAffinityMode,
): PlacementRequest {
  return {
    memoryMb: r.memoryMb,
    vcpus: r.vcpus,
    diskGb: r.diskGb,
    antiAffinity: r.antiAffinityGroup === null ? undefined : { group: r.antiAffinityGroup, mode },
  };
}

/** The audit events of the steps an evaluation decided; decisions kept from the previous plan were audited when made. */
function decisionEvents(
  r: Pick<VmRequestRecord, 'id' | 'approvalPlan'>,
  plan: readonly PlanEntry[],
  actor: string,
  requestId: string | null,
): AuditEventInput[] {
  const decidedBefore = new Set(
    r.approvalPlan.filter((e) => e.status === 'approved' || e.status === 'rejected').map((e) => e.index),
  );
  return plan
    .filter((e) => (e.status === 'approved' || e.status === 'rejected') && !decidedBefore.has(e.index))
    .map((p) => ({
      actor,
      action: `approval.${p.status === 'approved' ? 'approve' : 'reject'}`,
      objectType: 'vm-request',
      objectId: r.id,
      after: { step: p.step, status: p.status, detail: p.detail },
      reason: p.reason,
      requestId,
    }));
}

function provisionJob(requestId: string): NewOutboxJob {
  return { name: 'VmProvision', jobId: jobIdFor('VmProvision', requestId), payload: { requestId } };
}

function approvalStepJob(requestId: string, step: string): NewOutboxJob {
  return {
    name: 'ApprovalStepRun',
    jobId: jobIdFor('ApprovalStepRun', `${requestId}.${step}`),
    payload: { requestId, step },
  };
}

/** Canonical JSON (sorted keys, defaults applied) so key order or omitted defaults are still "the same body". */
export function requestHash(input: VmRequestInput): string {
  const canonical = {
    name: input.name,
    vcpus: input.vcpus,
    memoryMb: input.memoryMb,
    diskGb: input.diskGb,
    imageId: input.imageId,
    networkId: input.networkId,
    lifecycleClass: input.lifecycleClass,
    antiAffinityGroup: input.antiAffinityGroup ?? null,
    labels: Object.fromEntries(Object.entries(input.labels ?? {}).sort(([a], [b]) => a.localeCompare(b))),
    purpose: input.purpose ?? null,
    // Only when given: a body without it hashes as it did before the field existed.
    ...(input.heartbeatTimeoutMs === undefined ? {} : { heartbeatTimeoutMs: input.heartbeatTimeoutMs }),
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

export function view(r: VmRequestRecord): VmRequestView {
  const { requestHash: _h, idempotencyKey: _k, ...rest } = r;
  const pending: PlanEntry | undefined =
    r.state === 'pending_approval' ? r.approvalPlan.find((p) => p.status === 'pending') : undefined;
  return {
    ...rest,
    waitingOn: pending ? { step: pending.step, waitingOn: pending.waitingOn, groups: pending.groups } : null,
    mustAct: r.state === 'pending_approval' ? whoMustAct(r.approvalPlan) : [],
  };
}

function auditView(r: VmRequestRecord): Record<string, unknown> {
  return {
    name: r.name,
    vcpus: r.vcpus,
    memoryMb: r.memoryMb,
    diskGb: r.diskGb,
    imageId: r.imageId,
    networkId: r.networkId,
    lifecycleClass: r.lifecycleClass,
    state: r.state,
  };
}
