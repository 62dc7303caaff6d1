import { type AuditEventInput } from '../audit/audit.port';
import { type InventoryTx } from '../inventory/catalogue.port';
import { type TokenStore } from '../identity/identity.port';
import { type HeartbeatTimeouts } from '../lifecycle/heartbeat';
import { type NewOutboxJob, type OutboxWriter } from '../outbox';
import { type WebhookDeliveryWriter } from '../notifications/webhook-delivery.port';
import { type PlanEntry, type QuotaUsage, type UsageScope } from './approval-pipeline';
import { type InstanceState, type VmRequestState } from './vm-request.state';

export interface HistoryEntry {
  from: VmRequestState | null;
  to: VmRequestState;
  at: string;
  by: string;
  reason: string | null;
}

export interface VmRequestRecord {
  id: string;
  name: string;
  ownerId: string;
  vcpus: number;
  memoryMb: number;
  diskGb: number;
  imageId: string | null;
  networkId: string | null;
  lifecycleClass: 'cattle' | 'pet';
  antiAffinityGroup: string | null;
  labels: Record<string, string>;
  purpose: string | null;
  /** The instance's own heartbeat timeout; null uses its lifecycle class's. */
  heartbeatTimeoutS: number | null;
  state: VmRequestState;
  stateReason: string | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  hostId: string | null;
  approvalPlan: PlanEntry[];
  history: HistoryEntry[];
  error: Record<string, unknown> | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewVmRequest {
  name: string;
  ownerId: string;
  vcpus: number;
  memoryMb: number;
  diskGb: number;
  imageId: string;
  networkId: string;
  lifecycleClass: 'cattle' | 'pet';
  antiAffinityGroup: string | null;
  labels: Record<string, string>;
  purpose: string | null;
  heartbeatTimeoutS: number | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  history: HistoryEntry[];
}

/** A new request that has been through its pipeline: inserted as it ends up, with its plan. */
export interface AdmittedVmRequest extends NewVmRequest {
  id: string;
  state: VmRequestState;
  stateReason: string | null;
  approvalPlan: PlanEntry[];
}

/** One admitted request with what is written along with it. */
export interface AdmittedEntry {
  request: AdmittedVmRequest;
  jobs: readonly NewOutboxJob[];
  audit: readonly AuditEventInput[];
}

/** What creating a request must read, under its locks. */
export interface AdmissionQuery {
  /** Taken before anything is read (see `VmRequestStore.admission` for their order). */
  locks: readonly string[];
  ownerId: string;
  idempotencyKey: string | null;
  name: string;
  imageId: string;
  networkId: string;
}

/** Read in one statement after the locks are held, so every earlier request of the owner and name is seen. */
export interface AdmissionFacts {
  /** The request an earlier POST created with this Idempotency-Key. */
  originalId: string | null;
  image: { name: string; defaultDiskGb: number } | null;
  network: { name: string } | null;
  /** A live instance or an in-flight request holds the name. */
  nameTaken: boolean;
  ownerGroups: string[];
  /** The owner's live instances plus in-flight requests. */
  ownerUsage: QuotaUsage;
}

export interface VmRequestPatch {
  state?: VmRequestState;
  stateReason?: string | null;
  approvalPlan?: PlanEntry[];
  error?: Record<string, unknown> | null;
  hostId?: string | null;
  appendHistory?: HistoryEntry;
}

export interface ListFilter {
  ownerId?: string | undefined;
  state?: string | undefined;
  label?: { key: string; value: string } | undefined;
  /** Opaque cursor from the previous page. */
  cursor?: string | undefined;
  limit: number;
}

export interface Page<T> {
  items: T[];
  /** Absent on the last page. */
  nextCursor?: string;
}

export interface VmRequestStore {
  get(id: string): Promise<VmRequestRecord | undefined>;
  list(filter: ListFilter): Promise<Page<VmRequestRecord>>;
  /**
   * `UPDATE … WHERE id = $1 AND version = $2`: undefined when another writer got there first
   * (the caller re-reads and reports the state it lost to).
   */
  update(id: string, expectedVersion: number, patch: VmRequestPatch): Promise<VmRequestRecord | undefined>;
  /** Live instances plus in-flight requests of the scope, leaving one request out. */
  usage(scope: UsageScope, excludeRequestId: string): Promise<QuotaUsage>;
  /**
   * Transaction-scoped advisory locks, several in the order given in one round trip (the
   * approvals take one per request). Not for the create path's keys: `admission` takes those,
   * in its own order.
   */
  lock(...keys: string[]): Promise<void>;
  /**
   * The create path's locks for every query, then each query's reads (in a snapshot taken
   * after all the locks): one round trip, one result per query in the order given. The locks
   * are taken in ascending lock id whatever the order given, so two transactions holding
   * overlapping sets never wait on each other crosswise.
   */
  admission(queries: readonly AdmissionQuery[]): Promise<AdmissionFacts[]>;
  /**
   * Requests decided by their pipelines before they were ever written: the rows, their reached
   * approval steps, their jobs and their audit events (chained when the transaction commits,
   * as the transaction's `audit` would, in the order given) in one statement. The rows come
   * back in the order given.
   *
   * `last`: nothing follows this statement in its transaction, so the commit may be sent right
   * behind it rather than after its answer. The transaction must then write nothing more.
   */
  insertAdmitted(entries: readonly AdmittedEntry[], options?: { last?: boolean }): Promise<VmRequestRecord[]>;
  /** Mirrors the plan into the approvals table that the approvals issue's queue reads. */
  saveApprovals(requestId: string, plan: readonly PlanEntry[]): Promise<void>;
  ownerGroups(ownerId: string): Promise<string[]>;
  /**
   * Approved requests still without a host whose anti-affinity group is `group` (null: none),
   * `first` before the others if it is one of them, then oldest first.
   */
  listUnplaced(group: string | null, first: string, limit: number): Promise<VmRequestRecord[]>;
  /**
   * Sets each request's host with one versioned UPDATE; a request whose version moved meanwhile
   * (cancelled, say) is left alone and not returned.
   */
  placeMany(
    placements: ReadonlyArray<{ id: string; version: number; hostId: string }>,
  ): Promise<VmRequestRecord[]>;
  /** Requests in approved/provisioning whose last change is older than `before`, oldest first. */
  listStalled(before: Date, limit: number): Promise<VmRequestRecord[]>;
}

export interface InstanceRecord {
  id: string;
  vmRequestId: string;
  name: string;
  ownerId: string;
  hostId: string | null;
  domainName: string;
  domid: number | null;
  lifecycleClass: 'cattle' | 'pet';
  state: InstanceState;
  diskVolume: string | null;
  ip: string | null;
  mac: string | null;
  lastHeartbeatAt: Date | null;
  /** When the reaper starts to look at it: last beat (or start) + its timeout. */
  heartbeatDeadlineAt: Date | null;
  /** Its own timeout; null uses its lifecycle class's. */
  heartbeatTimeoutS: number | null;
  /** Deregistration targets that failed and are waiting for a retry: why it is still decommissioning. */
  failingTargets: string[];
  labels: Record<string, string>;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewInstance {
  vmRequestId: string;
  name: string;
  ownerId: string;
  hostId: string;
  domainName: string;
  lifecycleClass: 'cattle' | 'pet';
  labels: Record<string, string>;
  heartbeatTimeoutS: number | null;
}

export interface InstancePatch {
  state?: InstanceState;
  domid?: number | null;
  diskVolume?: string | null;
  ip?: string | null;
  mac?: string | null;
  instanceTokenHash?: string | null;
}

export interface InstanceFilter extends ListFilter {
  hostId?: string | undefined;
}

export interface InstanceStore {
  create(i: NewInstance): Promise<InstanceRecord>;
  get(id: string): Promise<InstanceRecord | undefined>;
  getByRequest(requestId: string): Promise<InstanceRecord | undefined>;
  list(filter: InstanceFilter): Promise<Page<InstanceRecord>>;
  update(id: string, expectedVersion: number, patch: InstancePatch): Promise<InstanceRecord | undefined>;
  /**
   * Sets the instance's own timeout (null: back to its class's) and moves its deadline to
   * last beat + the timeout now in force, versioned like `update`. An instance that never beat
   * gets no deadline: the reaper starts its clock afresh.
   */
  setHeartbeatTimeout(
    id: string,
    expectedVersion: number,
    timeoutS: number | null,
    classTimeouts: HeartbeatTimeouts,
  ): Promise<InstanceRecord | undefined>;
}

export interface NewOperation {
  kind: string;
  targetType: string;
  targetId: string;
  requestedBy: string;
  deadlineAt: Date;
}

export interface OperationWriter {
  create(op: NewOperation): Promise<string>;
  /** Open operations of the target, newest first. */
  openFor(targetType: string, targetId: string): Promise<string[]>;
  /** Pending/running operations whose deadline has passed. */
  listOverdue(now: Date, limit: number): Promise<Array<{ id: string; kind: string; targetId: string }>>;
  /** Fails an open operation (a no-op once it finished). */
  fail(id: string, error: Record<string, unknown>): Promise<boolean>;
}

export interface HostProvisionCounter {
  /**
   * Counts a provisioning failure on the host; at `blockAfter` in a row, sets its
   * placement_blocked_reason (an operator clears it). A success resets the count.
   */
  recordProvisionResult(hostId: string, ok: boolean, blockAfter: number): Promise<{ blocked: boolean }>;
}

/** One transaction across requests, instances, inventory, outbox, tokens and audit. */
export interface VmRequestTx extends InventoryTx {
  requests: VmRequestStore;
  instanceStore: InstanceStore;
  outbox: OutboxWriter;
  tokens: TokenStore;
  operations: OperationWriter;
  provisionCounter: HostProvisionCounter;
  /** Notifications, recorded with the change they report (notifications/). */
  webhookDeliveries: WebhookDeliveryWriter;
  /**
   * Runs `fn` once this transaction has committed, never if it rolls back: metrics count
   * what happened, not what was attempted.
   */
  afterCommit(fn: () => void): void;
}

/** What a read needs: requests and instances. */
export type VmRequestReads = Pick<VmRequestTx, 'requests' | 'instanceStore'>;

export interface VmRequestUnitOfWork {
  run<T>(work: (tx: VmRequestTx) => Promise<T>): Promise<T>;
  /**
   * Pure reads, outside any transaction. Postgres's READ COMMITTED gives each statement its
   * own snapshot inside a transaction too, so a read gains nothing from BEGIN and COMMIT but
   * two round trips (bench/api's GET). Never write through it: nothing here is atomic.
   */
  read<T>(work: (reads: VmRequestReads) => Promise<T>): Promise<T>;
}
