import {
  type AdmissionFacts,
  type AdmissionQuery,
  type AdmittedEntry,
  DomainError,
  type HeartbeatTimeouts,
  type HostProvisionCounter,
  type InstanceFilter,
  type InstancePatch,
  type InstanceRecord,
  type InstanceStore,
  type ListFilter,
  type NewInstance,
  type NewOperation,
  type OperationWriter,
  type Page,
  type PlanEntry,
  type QuotaUsage,
  type UsageScope,
  type VmRequestPatch,
  type VmRequestRecord,
  type VmRequestStore,
  type VmRequestTx,
  type VmRequestReads,
  type VmRequestUnitOfWork,
} from '@norm/core';
import { type DataSource, type EntityManager } from 'typeorm';
import { PgDeferredAuditLog, stagingInsert, stagingRows } from '../audit/audit.repository';
import { inventoryTx } from '../hosts/pg-inventory.unit-of-work';
import { PgTokenStore } from '../identity/identity.repository';
import { OutboxWriterRepository } from '../outbox/outbox.repository';
import { PgWebhookDeliveryWriter } from '../notifications/webhook-delivery.repository';
import { isUniqueViolation, rowsOf } from '../pg-errors';
import { type PreparedStatement, prepared, queryPrepared } from '../prepared';
import { type PipelinedTransactionControl, pipelinedTransaction } from '../pipelined-transaction';
import { ReadCoalescer } from '../read-coalescer';

/**
 * Named, not `*`: a prepared statement whose result columns change (a migration adds one
 * while the API runs) fails with "cached plan must not change result type".
 */
const REQUEST_COLUMNS = `"id", "name", "owner_id", "vcpus", "memory_mb", "disk_gb", "image_id", "network_id", "lifecycle_class", "anti_affinity_group", "labels", "purpose", "heartbeat_timeout_s", "state", "state_reason", "idempotency_key", "request_hash", "host_id", "approval_plan", "history", "error", "version", "created_at", "updated_at"`;

interface RequestRow {
  id: string;
  name: string;
  owner_id: string;
  vcpus: number;
  memory_mb: number;
  disk_gb: number;
  image_id: string | null;
  network_id: string | null;
  lifecycle_class: 'cattle' | 'pet';
  anti_affinity_group: string | null;
  labels: Record<string, string>;
  purpose: string | null;
  heartbeat_timeout_s: number | null;
  state: VmRequestRecord['state'];
  state_reason: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  host_id: string | null;
  approval_plan: PlanEntry[];
  history: VmRequestRecord['history'];
  error: Record<string, unknown> | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

function toRequest(r: RequestRow): VmRequestRecord {
  return {
    id: r.id,
    name: r.name,
    ownerId: r.owner_id,
    vcpus: r.vcpus,
    memoryMb: r.memory_mb,
    diskGb: r.disk_gb,
    imageId: r.image_id,
    networkId: r.network_id,
    lifecycleClass: r.lifecycle_class,
    antiAffinityGroup: r.anti_affinity_group,
    labels: r.labels,
    purpose: r.purpose,
    heartbeatTimeoutS: r.heartbeat_timeout_s,
    state: r.state,
    stateReason: r.state_reason,
    idempotencyKey: r.idempotency_key,
    requestHash: r.request_hash,
    hostId: r.host_id,
    approvalPlan: r.approval_plan,
    history: r.history,
    error: r.error,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Keyset pagination over (created_at DESC, id DESC): stable under concurrent inserts (shared by the stores that page this way). */
export function decodeCursor(cursor: string | undefined): { at: string; id: string } | undefined {
  if (cursor === undefined) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const [at, id] = text.split('|');
  if (!at || !id || Number.isNaN(Date.parse(at)) || !/^[0-9a-f-]{36}$/.test(id))
    throw new DomainError('ValidationFailed', 'the cursor is not one this API issued', {
      issues: [{ path: 'cursor', message: 'invalid cursor' }],
    });
  return { at, id };
}

function encodeCursor(at: string, id: string): string {
  return Buffer.from(`${at}|${id}`, 'utf8').toString('base64url');
}

/**
 * The select-list item `page` needs: `created_at` to the microsecond, as Postgres keeps it. A
 * JavaScript Date holds milliseconds, and a cursor cut to them skipped every row after the
 * page's last one within the same millisecond (a creation batch writes dozens).
 */
export const CURSOR_AT = `to_char("created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "cursor_at"`;

export function page<R extends { cursor_at: string; id: string }, T>(
  rows: R[],
  limit: number,
  map: (r: R) => T,
): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return rows.length > limit && last
    ? { items: items.map(map), nextCursor: encodeCursor(last.cursor_at, last.id) }
    : { items: items.map(map) };
}

const GET_REQUEST = prepared(`SELECT ${REQUEST_COLUMNS} FROM "vm_requests" WHERE "id" = $1`);
/**
 * Requests as their pipelines left them, their reached approval steps, their jobs and their
 * audit events, in one statement, each as one JSON array: $1 the rows, $2 the jobs, $3 the
 * approval rows (`approvalRows`), $4 the staged audit events (`stagingRows`), which the commit
 * chains. The approvals' foreign key is checked at the end of the statement, when the request
 * rows exist. Only what Postgres fills in comes back: the caller has the rest.
 *
 * Each row's `created_at` is the moment it is written (`clock_timestamp()`, not the
 * transaction's `now()`), so a batch's requests are ordered as their jobs are (the outbox ids
 * follow the same order): placement, oldest first, then spreads a burst over the hosts in the
 * order the jobs reach the workers, instead of in the random order of the ids.
 */
const INSERT_ADMITTED = prepared(
  `WITH "request" AS (
     INSERT INTO "vm_requests" ("id", "name", "owner_id", "vcpus", "memory_mb", "disk_gb", "image_id", "network_id",
       "lifecycle_class", "anti_affinity_group", "labels", "purpose", "idempotency_key", "request_hash", "history",
       "heartbeat_timeout_s", "state", "state_reason", "approval_plan", "created_at", "updated_at")
     SELECT n."id", n."name", n."owner_id", n."vcpus", n."memory_mb", n."disk_gb", n."image_id", n."network_id",
            n."lifecycle_class", n."anti_affinity_group", n."labels", n."purpose", n."idempotency_key",
            n."request_hash", n."history", n."heartbeat_timeout_s", n."state", n."state_reason", n."approval_plan",
            n."at", n."at"
       FROM (SELECT *, clock_timestamp() AS "at"
               FROM jsonb_to_recordset($1::jsonb) AS n("id" uuid, "name" text, "owner_id" uuid, "vcpus" int,
                    "memory_mb" int, "disk_gb" int, "image_id" uuid, "network_id" uuid, "lifecycle_class" text,
                    "anti_affinity_group" text, "labels" jsonb, "purpose" text, "idempotency_key" text,
                    "request_hash" text, "history" jsonb, "heartbeat_timeout_s" int, "state" text,
                    "state_reason" text, "approval_plan" jsonb)) n
     RETURNING "id", "version", "created_at", "updated_at"
   ), "jobs" AS (
     INSERT INTO "outbox" ("job_name", "job_id", "payload")
     SELECT j->>'name', j->>'jobId', j->'payload' FROM jsonb_array_elements($2::jsonb) j
     ON CONFLICT ("job_id") DO NOTHING
   ), "steps" AS (
     ${approvalInsert(3)}
   ), "audit" AS (
     ${stagingInsert(4)}
   )
   SELECT * FROM "request"`,
);
const updateStatements = new Map<string, PreparedStatement>();
function updateStatement(sets: string): PreparedStatement {
  let statement = updateStatements.get(sets);
  if (!statement) {
    statement = prepared(
      `UPDATE "vm_requests" SET ${sets} WHERE "id" = $1 AND "version" = $2 RETURNING ${REQUEST_COLUMNS}`,
    );
    updateStatements.set(sets, statement);
  }
  return statement;
}

/**
 * What a quota counts (in flight, or running with an instance that is not gone), leaving one
 * request out: the owners' kept sums (`quota_usage`, migration QuotaUsageCounters) less that
 * request's share, when it counts and is theirs.
 */
function usageSums(owners: string): string {
  return `SELECT (t."instances" - x."instances")::int AS "instances", (t."vcpus" - x."vcpus")::int AS "vcpus",
    (t."memory_mb" - x."memory_mb")::int AS "memory_mb"
    FROM (SELECT coalesce(sum(u."instances"), 0) AS "instances", coalesce(sum(u."vcpus"), 0) AS "vcpus",
                 coalesce(sum(u."memory_mb"), 0) AS "memory_mb"
            FROM "quota_usage" u WHERE u."owner_id" ${owners}) t,
         (SELECT count(*) AS "instances", coalesce(sum(r."vcpus"), 0) AS "vcpus",
                 coalesce(sum(r."memory_mb"), 0) AS "memory_mb"
            FROM "vm_requests" r
           WHERE r."id" = $2 AND r."owner_id" ${owners} AND norm_quota_counts(r."state", r."instance_live")) x`;
}
const USAGE_BY_OWNER = prepared(usageSums('= $1::uuid'));
const USAGE_BY_GROUP = prepared(
  usageSums(`IN (SELECT "principal_id" FROM "principal_groups" WHERE "group_name" = $1::text)`),
);
/**
 * The create path's locks for a batch of requests and then everything each one's admission
 * reads, in one round trip: the function (migration RequestAdmissionForMany) reads in a
 * snapshot taken after the locks, one row per request in order.
 */
const ADMISSION = prepared(
  `SELECT * FROM "norm_request_admission_many"($1::text[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::text[])`,
);
const OWNER_GROUPS = prepared(
  `SELECT "group_name" FROM "principal_groups" WHERE "principal_id" = $1 ORDER BY "group_name"`,
);

/** The advisory lock's name for a caller's key (Postgres hashes it with hashtext). */
function lockKey(key: string): string {
  return `norm:vm-request:${key}`;
}

/** In the order given: WITH ORDINALITY keeps the caller's order, which is what prevents deadlocks. */
const LOCK_ONE = prepared(`SELECT pg_advisory_xact_lock(hashtext($1))`);
const LOCK_MANY = prepared(
  `SELECT pg_advisory_xact_lock(hashtext(k."key")) FROM unnest($1::text[]) WITH ORDINALITY AS k("key", "ord") ORDER BY k."ord"`,
);

/** Reached steps as rows for "approvals", from the JSON array `approvalRows` makes in $`param`. */
function approvalInsert(param: number): string {
  return `INSERT INTO "approvals" ("vm_request_id", "step_index", "step_name", "kind", "status", "groups",
    "decided_by", "reason", "detail", "decided_at")
  SELECT s."vm_request_id", s."step_index", s."step_name", s."kind", s."status", s."groups", s."decided_by",
         s."reason", s."detail", s."decided_at"
    FROM jsonb_to_recordset($${param}::jsonb) AS s("vm_request_id" uuid, "step_index" int, "step_name" text,
         "kind" text, "status" text, "groups" text[], "decided_by" text, "reason" text, "detail" jsonb,
         "decided_at" timestamptz)`;
}

/** The rows `approvalInsert` reads: one per reached step of each request's plan. */
function approvalRows(requests: ReadonlyArray<{ id: string; approvalPlan: readonly PlanEntry[] }>): string {
  return JSON.stringify(
    requests.flatMap((r) =>
      r.approvalPlan
        .filter((p) => p.status !== 'not_reached')
        .map((p) => ({
          vm_request_id: r.id,
          step_index: p.index,
          step_name: p.step,
          kind: p.kind,
          status: p.status,
          groups: p.groups,
          // Human and callback decisions name their decider in the detail; automatic ones are the system's.
          decided_by:
            p.status === 'pending'
              ? null
              : typeof p.detail['decidedBy'] === 'string'
                ? p.detail['decidedBy']
                : 'system:approval',
          reason: p.reason,
          detail: p.detail,
          decided_at: p.decidedAt,
        })),
    ),
  );
}

const SAVE_APPROVALS = prepared(`
  ${approvalInsert(1)}
  ON CONFLICT ("vm_request_id", "step_index") DO UPDATE SET "status" = EXCLUDED."status",
    "groups" = EXCLUDED."groups", "decided_by" = EXCLUDED."decided_by", "reason" = EXCLUDED."reason",
    "detail" = EXCLUDED."detail", "decided_at" = EXCLUDED."decided_at"`);

const LIST_UNPLACED = prepared(
  `SELECT ${REQUEST_COLUMNS} FROM "vm_requests"
    WHERE "state" = 'approved' AND "host_id" IS NULL AND "anti_affinity_group" IS NOT DISTINCT FROM $1
    ORDER BY ("id" = $2) DESC, "created_at", "id" LIMIT $3`,
);
/** Versioned like `update`, for many rows: only those still at the version placement read. */
const PLACE_MANY = prepared(
  `UPDATE "vm_requests" r SET "host_id" = p."host_id", "version" = r."version" + 1, "updated_at" = now()
     FROM unnest($1::uuid[], $2::int[], $3::uuid[]) AS p("id", "version", "host_id")
    WHERE r."id" = p."id" AND r."version" = p."version" AND r."state" = 'approved'
   RETURNING ${REQUEST_COLUMNS.split(', ')
     .map((c) => `r.${c}`)
     .join(', ')}`,
);

interface AdmissionRow {
  original_id: string | null;
  image_found: { name: string; defaultDiskGb: number } | null;
  network_found: { name: string } | null;
  name_taken: boolean;
  groups: string[];
  instances: number;
  vcpus: number;
  memory_mb: number;
}

/** Sends a statement as its transaction's last, with the commit queued behind it. */
export type FinalStatement = PipelinedTransactionControl['finalStatement'];

export class PgVmRequestStore implements VmRequestStore {
  constructor(
    private readonly manager: EntityManager,
    /** Present in a unit of work that can queue its commit behind a statement. */
    private readonly final?: FinalStatement,
  ) {}

  async get(id: string): Promise<VmRequestRecord | undefined> {
    const rows = await queryPrepared<RequestRow[]>(this.manager, GET_REQUEST, [id]);
    return rows[0] ? toRequest(rows[0]) : undefined;
  }

  async list(filter: ListFilter): Promise<Page<VmRequestRecord>> {
    const after = decodeCursor(filter.cursor);
    const rows: Array<RequestRow & { cursor_at: string }> = await this.manager.query(
      `SELECT *, ${CURSOR_AT} FROM "vm_requests"
       WHERE ($1::uuid IS NULL OR "owner_id" = $1)
         AND ($2::text IS NULL OR "state" = $2)
         AND ($3::jsonb IS NULL OR "labels" @> $3::jsonb)
         AND ($4::timestamptz IS NULL OR ("created_at", "id") < ($4::timestamptz, $5::uuid))
       ORDER BY "created_at" DESC, "id" DESC LIMIT $6`,
      [
        filter.ownerId ?? null,
        filter.state ?? null,
        filter.label ? JSON.stringify({ [filter.label.key]: filter.label.value }) : null,
        after?.at ?? null,
        after?.id ?? null,
        filter.limit + 1,
      ],
    );
    return page(rows, filter.limit, toRequest);
  }

  async update(
    id: string,
    expectedVersion: number,
    patch: VmRequestPatch,
  ): Promise<VmRequestRecord | undefined> {
    const sets: string[] = [`"version" = "version" + 1`, `"updated_at" = now()`];
    const params: unknown[] = [id, expectedVersion];
    const set = (column: string, value: unknown, cast = ''): void => {
      params.push(value);
      sets.push(`"${column}" = $${params.length}${cast}`);
    };
    if (patch.state !== undefined) set('state', patch.state);
    if (patch.stateReason !== undefined) set('state_reason', patch.stateReason);
    if (patch.approvalPlan !== undefined) set('approval_plan', JSON.stringify(patch.approvalPlan), '::jsonb');
    if (patch.error !== undefined)
      set('error', patch.error === null ? null : JSON.stringify(patch.error), '::jsonb');
    if (patch.hostId !== undefined) set('host_id', patch.hostId);
    if (patch.appendHistory !== undefined) {
      params.push(JSON.stringify([patch.appendHistory]));
      sets.push(`"history" = "history" || $${params.length}::jsonb`);
    }
    // The version in the WHERE is the optimistic lock: a writer that read an older row matches nothing.
    // One text per combination of patched fields: a few dozen at most, so each is prepared.
    const result: unknown = await queryPrepared(this.manager, updateStatement(sets.join(', ')), params);
    const row = rowsOf<RequestRow>(result)[0];
    return row ? toRequest(row) : undefined;
  }

  async usage(scope: UsageScope, excludeRequestId: string): Promise<QuotaUsage> {
    const rows = await queryPrepared<Array<{ instances: number; vcpus: number; memory_mb: number }>>(
      this.manager,
      'ownerId' in scope ? USAGE_BY_OWNER : USAGE_BY_GROUP,
      ['ownerId' in scope ? scope.ownerId : scope.group, excludeRequestId],
    );
    const row = rows[0];
    return { instances: row?.instances ?? 0, vcpus: row?.vcpus ?? 0, memoryMb: row?.memory_mb ?? 0 };
  }

  async lock(...keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    if (keys.length === 1) {
      await queryPrepared(this.manager, LOCK_ONE, [lockKey(keys[0]!)]);
      return;
    }
    await queryPrepared(this.manager, LOCK_MANY, [keys.map(lockKey)]);
  }

  async saveApprovals(requestId: string, plan: readonly PlanEntry[]): Promise<void> {
    if (!plan.some((p) => p.status !== 'not_reached')) return;
    await queryPrepared(this.manager, SAVE_APPROVALS, [
      approvalRows([{ id: requestId, approvalPlan: plan }]),
    ]);
  }

  async admission(queries: readonly AdmissionQuery[]): Promise<AdmissionFacts[]> {
    if (queries.length === 0) return [];
    const rows = await queryPrepared<AdmissionRow[]>(this.manager, ADMISSION, [
      queries.flatMap((q) => q.locks.map(lockKey)),
      queries.map((q) => q.ownerId),
      queries.map((q) => q.idempotencyKey),
      queries.map((q) => q.imageId),
      queries.map((q) => q.networkId),
      queries.map((q) => q.name),
    ]);
    return rows.map((row) => ({
      originalId: row.original_id,
      image: row.image_found,
      network: row.network_found,
      nameTaken: row.name_taken,
      ownerGroups: row.groups,
      ownerUsage: { instances: row.instances, vcpus: row.vcpus, memoryMb: row.memory_mb },
    }));
  }

  async insertAdmitted(
    entries: readonly AdmittedEntry[],
    options: { last?: boolean } = {},
  ): Promise<VmRequestRecord[]> {
    if (entries.length === 0) return [];
    const requests = entries.map((e) => e.request);
    try {
      const values = [
        JSON.stringify(
          requests.map((r) => ({
            id: r.id,
            name: r.name,
            owner_id: r.ownerId,
            vcpus: r.vcpus,
            memory_mb: r.memoryMb,
            disk_gb: r.diskGb,
            image_id: r.imageId,
            network_id: r.networkId,
            lifecycle_class: r.lifecycleClass,
            anti_affinity_group: r.antiAffinityGroup,
            labels: r.labels,
            purpose: r.purpose,
            idempotency_key: r.idempotencyKey,
            request_hash: r.requestHash,
            history: r.history,
            heartbeat_timeout_s: r.heartbeatTimeoutS,
            state: r.state,
            state_reason: r.stateReason,
            approval_plan: r.approvalPlan,
          })),
        ),
        JSON.stringify(entries.flatMap((e) => e.jobs)),
        approvalRows(requests),
        stagingRows(
          entries.flatMap((e) => e.audit),
          new Date(),
        ),
      ];
      type Inserted = Pick<RequestRow, 'id' | 'version' | 'created_at' | 'updated_at'>;
      const rows =
        options.last && this.final
          ? await this.final<Inserted>(INSERT_ADMITTED, values)
          : await queryPrepared<Inserted[]>(this.manager, INSERT_ADMITTED, values);
      const byId = new Map(rows.map((row) => [row.id, row]));
      return requests.map((r) => {
        const row = byId.get(r.id);
        if (!row) throw new Error(`vm request ${r.id} was not inserted`);
        return {
          ...r,
          hostId: null,
          error: null,
          version: row.version,
          createdAt: row.created_at,
          updatedAt: row.updated_at,
        };
      });
    } catch (error) {
      if (isUniqueViolation(error, 'uq_vm_requests_owner_idempotency_key'))
        throw new DomainError('IdempotencyConflict', 'this Idempotency-Key is being used concurrently', {});
      throw error;
    }
  }

  async ownerGroups(ownerId: string): Promise<string[]> {
    const rows = await queryPrepared<Array<{ group_name: string }>>(this.manager, OWNER_GROUPS, [ownerId]);
    return rows.map((r) => r.group_name);
  }

  async listUnplaced(group: string | null, first: string, limit: number): Promise<VmRequestRecord[]> {
    const rows = await queryPrepared<RequestRow[]>(this.manager, LIST_UNPLACED, [group, first, limit]);
    return rows.map(toRequest);
  }

  async placeMany(
    placements: ReadonlyArray<{ id: string; version: number; hostId: string }>,
  ): Promise<VmRequestRecord[]> {
    if (placements.length === 0) return [];
    const result: unknown = await queryPrepared(this.manager, PLACE_MANY, [
      placements.map((p) => p.id),
      placements.map((p) => p.version),
      placements.map((p) => p.hostId),
    ]);
    return rowsOf<RequestRow>(result).map(toRequest);
  }

  async listStalled(before: Date, limit: number): Promise<VmRequestRecord[]> {
    const rows: RequestRow[] = await this.manager.query(
      `SELECT * FROM "vm_requests" WHERE "state" IN ('approved', 'provisioning') AND "updated_at" < $1
       ORDER BY "updated_at" LIMIT $2`,
      [before, limit],
    );
    return rows.map(toRequest);
  }
}

interface InstanceRow {
  id: string;
  vm_request_id: string;
  name: string;
  owner_id: string;
  host_id: string | null;
  domain_name: string;
  domid: number | null;
  lifecycle_class: 'cattle' | 'pet';
  state: InstanceRecord['state'];
  disk_volume: string | null;
  ip: string | null;
  mac: string | null;
  last_heartbeat_at: Date | null;
  heartbeat_deadline_at: Date | null;
  heartbeat_timeout_s: number | null;
  failing_targets: string[];
  labels: Record<string, string>;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const INSTANCE_COLUMNS = `"id", "vm_request_id", "name", "owner_id", "host_id", "domain_name", "domid", "lifecycle_class",
  "state", "disk_volume", host("ip") AS "ip", "mac", "last_heartbeat_at", "heartbeat_deadline_at", "heartbeat_timeout_s", "labels", "version", "created_at",
  "updated_at",
  ARRAY(SELECT d."target" FROM "deregistrations" d WHERE d."instance_id" = "instances"."id" AND d."status" = 'failed'
        ORDER BY d."target") AS "failing_targets"`;

const GET_INSTANCE = prepared(`SELECT ${INSTANCE_COLUMNS} FROM "instances" WHERE "id" = $1`);
const GET_INSTANCES = prepared(`SELECT ${INSTANCE_COLUMNS} FROM "instances" WHERE "id" = ANY($1::uuid[])`);
/** What Postgres would accept as a uuid: anything else names no instance (and must not fail a batch). */
const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function toInstance(r: InstanceRow): InstanceRecord {
  return {
    id: r.id,
    vmRequestId: r.vm_request_id,
    name: r.name,
    ownerId: r.owner_id,
    hostId: r.host_id,
    domainName: r.domain_name,
    domid: r.domid,
    lifecycleClass: r.lifecycle_class,
    state: r.state,
    diskVolume: r.disk_volume,
    ip: r.ip,
    mac: r.mac,
    lastHeartbeatAt: r.last_heartbeat_at,
    heartbeatDeadlineAt: r.heartbeat_deadline_at,
    heartbeatTimeoutS: r.heartbeat_timeout_s,
    failingTargets: r.failing_targets,
    labels: r.labels,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export class PgInstanceStore implements InstanceStore {
  constructor(private readonly manager: EntityManager) {}

  async create(i: NewInstance): Promise<InstanceRecord> {
    try {
      const rows: InstanceRow[] = await this.manager.query(
        `INSERT INTO "instances" ("vm_request_id", "name", "owner_id", "host_id", "domain_name", "lifecycle_class", "labels",
           "heartbeat_timeout_s")
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${INSTANCE_COLUMNS}`,
        [
          i.vmRequestId,
          i.name,
          i.ownerId,
          i.hostId,
          i.domainName,
          i.lifecycleClass,
          JSON.stringify(i.labels),
          i.heartbeatTimeoutS,
        ],
      );
      return toInstance(rows[0]!);
    } catch (error) {
      if (isUniqueViolation(error, 'uq_instances_live_name'))
        throw new DomainError('Conflict', 'a live instance already has this name', { name: i.name });
      throw error;
    }
  }

  async get(id: string): Promise<InstanceRecord | undefined> {
    const rows = await queryPrepared<InstanceRow[]>(this.manager, GET_INSTANCE, [id]);
    return rows[0] ? toInstance(rows[0]) : undefined;
  }

  async getByRequest(requestId: string): Promise<InstanceRecord | undefined> {
    const rows: InstanceRow[] = await this.manager.query(
      `SELECT ${INSTANCE_COLUMNS} FROM "instances" WHERE "vm_request_id" = $1`,
      [requestId],
    );
    return rows[0] ? toInstance(rows[0]) : undefined;
  }

  async list(filter: InstanceFilter): Promise<Page<InstanceRecord>> {
    const after = decodeCursor(filter.cursor);
    const rows: Array<InstanceRow & { cursor_at: string }> = await this.manager.query(
      `SELECT ${INSTANCE_COLUMNS}, ${CURSOR_AT} FROM "instances"
       WHERE ($1::uuid IS NULL OR "owner_id" = $1)
         AND ($2::text IS NULL OR "state" = $2)
         AND ($3::jsonb IS NULL OR "labels" @> $3::jsonb)
         AND ($4::uuid IS NULL OR "host_id" = $4)
         AND ($5::timestamptz IS NULL OR ("created_at", "id") < ($5::timestamptz, $6::uuid))
       ORDER BY "created_at" DESC, "id" DESC LIMIT $7`,
      [
        filter.ownerId ?? null,
        filter.state ?? null,
        filter.label ? JSON.stringify({ [filter.label.key]: filter.label.value }) : null,
        filter.hostId ?? null,
        after?.at ?? null,
        after?.id ?? null,
        filter.limit + 1,
      ],
    );
    return page(rows, filter.limit, toInstance);
  }

  async update(
    id: string,
    expectedVersion: number,
    patch: InstancePatch,
  ): Promise<InstanceRecord | undefined> {
    const sets: string[] = [`"version" = "version" + 1`, `"updated_at" = now()`];
    const params: unknown[] = [id, expectedVersion];
    const set = (column: string, value: unknown): void => {
      params.push(value);
      sets.push(`"${column}" = $${params.length}`);
    };
    if (patch.state !== undefined) set('state', patch.state);
    if (patch.domid !== undefined) set('domid', patch.domid);
    if (patch.diskVolume !== undefined) set('disk_volume', patch.diskVolume);
    if (patch.ip !== undefined) set('ip', patch.ip);
    if (patch.mac !== undefined) set('mac', patch.mac);
    if (patch.instanceTokenHash !== undefined) set('instance_token_hash', patch.instanceTokenHash);
    const result: unknown = await this.manager.query(
      `UPDATE "instances" SET ${sets.join(', ')} WHERE "id" = $1 AND "version" = $2 RETURNING ${INSTANCE_COLUMNS}`,
      params,
    );
    const row = rowsOf<InstanceRow>(result)[0];
    return row ? toInstance(row) : undefined;
  }

  async setHeartbeatTimeout(
    id: string,
    expectedVersion: number,
    timeoutS: number | null,
    classTimeouts: HeartbeatTimeouts,
  ): Promise<InstanceRecord | undefined> {
    // The same arithmetic as a beat's (pg-heartbeat.store), so the next beat lands on the same rule.
    const result: unknown = await this.manager.query(
      `UPDATE "instances" SET "version" = "version" + 1, "updated_at" = now(), "heartbeat_timeout_s" = $3::int,
         "heartbeat_deadline_at" = "last_heartbeat_at" + make_interval(secs => COALESCE($3::int,
           CASE WHEN "lifecycle_class" = 'cattle' THEN $4::int ELSE $5::int END))
       WHERE "id" = $1 AND "version" = $2 RETURNING ${INSTANCE_COLUMNS}`,
      [id, expectedVersion, timeoutS, classTimeouts.cattleS, classTimeouts.petS],
    );
    const row = rowsOf<InstanceRow>(result)[0];
    return row ? toInstance(row) : undefined;
  }
}

/** PgInstanceStore whose `get` joins the unit of work's coalesced reads. */
class CoalescedInstanceReads extends PgInstanceStore {
  constructor(
    manager: EntityManager,
    private readonly reads: ReadCoalescer<InstanceRecord>,
  ) {
    super(manager);
  }

  override get(id: string): Promise<InstanceRecord | undefined> {
    return UUID_SHAPE.test(id) ? this.reads.load(id.toLowerCase()) : Promise.resolve(undefined);
  }
}

export class PgOperationWriter implements OperationWriter {
  constructor(private readonly manager: EntityManager) {}

  async create(op: NewOperation): Promise<string> {
    const rows: Array<{ id: string }> = await this.manager.query(
      `INSERT INTO "operations" ("kind", "target_type", "target_id", "requested_by", "deadline_at")
       VALUES ($1, $2, $3, $4, $5) RETURNING "id"`,
      [op.kind, op.targetType, op.targetId, op.requestedBy, op.deadlineAt],
    );
    return rows[0]!.id;
  }

  async openFor(targetType: string, targetId: string): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.manager.query(
      `SELECT "id" FROM "operations" WHERE "target_type" = $1 AND "target_id" = $2
         AND "state" IN ('pending', 'running') ORDER BY "created_at" DESC`,
      [targetType, targetId],
    );
    return rows.map((r) => r.id);
  }

  async listOverdue(
    now: Date,
    limit: number,
  ): Promise<Array<{ id: string; kind: string; targetId: string }>> {
    const rows: Array<{ id: string; kind: string; target_id: string }> = await this.manager.query(
      `SELECT "id", "kind", "target_id" FROM "operations"
       WHERE "state" IN ('pending', 'running') AND "deadline_at" < $1 ORDER BY "deadline_at" LIMIT $2`,
      [now, limit],
    );
    return rows.map((r) => ({ id: r.id, kind: r.kind, targetId: r.target_id }));
  }

  async fail(id: string, error: Record<string, unknown>): Promise<boolean> {
    const result: unknown = await this.manager.query(
      `UPDATE "operations" SET "state" = 'failed', "error" = $2, "finished_at" = now(), "updated_at" = now(),
         "version" = "version" + 1
       WHERE "id" = $1 AND "state" IN ('pending', 'running') RETURNING "id"`,
      [id, JSON.stringify(error)],
    );
    return rowsOf(result).length === 1;
  }
}

export class PgHostProvisionCounter implements HostProvisionCounter {
  constructor(private readonly manager: EntityManager) {}

  async recordProvisionResult(
    hostId: string,
    ok: boolean,
    blockAfter: number,
  ): Promise<{ blocked: boolean }> {
    if (ok) {
      // Only a host with failures to forget is written: a success is the common case, and a
      // needless new row version of a host would contend with every provision on it.
      await this.manager.query(
        `UPDATE "hosts" SET "consecutive_provision_failures" = 0
          WHERE "id" = $1 AND "consecutive_provision_failures" <> 0`,
        [hostId],
      );
      return { blocked: false };
    }
    // Sets the block once, at the threshold, so the audit records one event and an operator's clear sticks.
    const result: unknown = await this.manager.query(
      `UPDATE "hosts" SET "consecutive_provision_failures" = "consecutive_provision_failures" + 1,
         "placement_blocked_reason" = CASE
           WHEN "consecutive_provision_failures" + 1 >= $2 AND "placement_blocked_reason" IS NULL
           THEN 'provisioning failed ' || ("consecutive_provision_failures" + 1) || ' times in a row'
           ELSE "placement_blocked_reason" END,
         "updated_at" = now()
       WHERE "id" = $1
       RETURNING "consecutive_provision_failures" AS "n"`,
      [hostId, blockAfter],
    );
    const n = rowsOf<{ n: number }>(result)[0]?.n ?? 0;
    return { blocked: n === blockAfter };
  }
}

export function vmRequestTx(
  manager: EntityManager,
  afterCommit: Array<() => void> = [],
  final?: FinalStatement,
): VmRequestTx {
  return {
    ...inventoryTx(manager),
    requests: new PgVmRequestStore(manager, final),
    instanceStore: new PgInstanceStore(manager),
    outbox: new OutboxWriterRepository(manager),
    tokens: new PgTokenStore(manager),
    operations: new PgOperationWriter(manager),
    provisionCounter: new PgHostProvisionCounter(manager),
    webhookDeliveries: new PgWebhookDeliveryWriter(manager),
    afterCommit: (fn) => afterCommit.push(fn),
  };
}

/** One Postgres transaction per unit: state change, job and audit event commit together. */
export class PgVmRequestUnitOfWork implements VmRequestUnitOfWork {
  /** Concurrent instance reads outside transactions share statements (the api's GET). */
  private readonly instanceReads: ReadCoalescer<InstanceRecord>;

  constructor(private readonly dataSource: DataSource) {
    this.instanceReads = new ReadCoalescer(async (ids) => {
      const rows = await queryPrepared<InstanceRow[]>(dataSource.manager, GET_INSTANCES, [ids]);
      return new Map(rows.map((r) => [r.id, toInstance(r)]));
    });
  }

  async run<T>(work: (tx: VmRequestTx) => Promise<T>): Promise<T> {
    const committed: Array<() => void> = [];
    const result = await pipelinedTransaction(this.dataSource, async (manager, control) => {
      // Audit events are written last, so the chain lock (global) is held only for their
      // insert and the commit, not for quota, placement and the outbox (see PgDeferredAuditLog).
      // Every transaction here thus takes the placement lock, if at all, before the chain lock.
      const audit = new PgDeferredAuditLog(manager);
      const final: FinalStatement = (statement, values) => {
        // Their statement would have to follow the last one.
        if (audit.pending > 0)
          throw new Error('audit events are waiting to be written after the last statement');
        return control.finalStatement(statement, values);
      };
      const inner = await work({ ...vmRequestTx(manager, committed, final), audit });
      await audit.flush();
      return inner;
    });
    // Observers only (metrics): one that throws must not turn a committed change into an error.
    for (const fn of committed)
      try {
        fn();
      } catch {
        // Nothing to undo: the transaction is already durable.
      }
    return result;
  }

  read<T>(work: (reads: VmRequestReads) => Promise<T>): Promise<T> {
    const manager = this.dataSource.manager;
    return work({
      requests: new PgVmRequestStore(manager),
      instanceStore: new CoalescedInstanceReads(manager, this.instanceReads),
    });
  }
}
