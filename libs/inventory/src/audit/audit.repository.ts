import {
  type AuditEventInput,
  type AuditFilter,
  type AuditHead,
  type AuditLog,
  type AuditPage,
  type AuditReader,
  type AuditRecord,
  type AuditVerification,
  chainBody,
  checkHead,
  checkLink,
  GENESIS_HASH,
  GENESIS_HEAD,
  redactSecrets,
  ValidationFailed,
} from '@norm/core';
import { type DataSource, type EntityManager } from 'typeorm';
import { rowsOf } from '../pg-errors';
import { prepared, queryPrepared } from '../prepared';

interface AuditRow {
  seq: string;
  at: Date;
  actor: string;
  action: string;
  object_type: string;
  object_id: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  reason: string | null;
  request_id: string | null;
  prev_hash: string;
  hash: string;
}

const COLUMNS = `"seq", "at", "actor", "action", "object_type", "object_id", "before", "after", "reason", "request_id", "prev_hash", "hash"`;

/** Round-trips a value through JSON exactly as it will come back from `jsonb`, so the hash matches on verify. */
function asStored(value: Record<string, unknown> | null | undefined): Record<string, unknown> | null {
  if (value === null || value === undefined) return null;
  return JSON.parse(JSON.stringify(redactSecrets(value))) as Record<string, unknown>;
}

/**
 * Stages events for the chain in one statement, taking no lock: `audit_pending`'s deferred
 * trigger calls `norm_audit_seal()` when the transaction commits, which locks the head,
 * chains the staged events onto it (sha256 over prev_hash, a newline and `body`, the
 * canonical JSON `chainBody` prepares), inserts them and moves the head (migration
 * AuditSealedAtCommit). The chain's one lock is therefore held for the commit alone, not
 * from an append to the commit. Staging order (`ord`) is chain order.
 */
const STAGE = prepared(stagingInsert(1));

/**
 * The INSERT that stages events into `audit_pending`, reading the JSON array `stagingRows`
 * makes from $`param`: for a statement that writes a change and its audit at once. One JSON
 * text, not an array per column: node-postgres escapes array elements character by character,
 * and the events' bodies are JSON full of quotes (bench/api).
 */
export function stagingInsert(param: number): string {
  return `INSERT INTO "audit_pending" ("at", "actor", "action", "object_type", "object_id", "before", "after",
                               "reason", "request_id", "body", "seal")
  SELECT e."at", e."actor", e."action", e."object_type", e."object_id", e."before", e."after",
         e."reason", e."request_id", e."body", e."ord" = 1
    FROM ROWS FROM (jsonb_to_recordset($${param}::jsonb) AS ("at" timestamptz, "actor" text, "action" text,
           "object_type" text, "object_id" text, "before" jsonb, "after" jsonb, "reason" text, "request_id" text,
           "body" text)) WITH ORDINALITY
      AS e("at", "actor", "action", "object_type", "object_id", "before", "after", "reason", "request_id", "body",
           "ord")
   ORDER BY e."ord"`;
}

/** Seals now what this transaction staged (the commit then finds nothing left) and returns the last link. */
const SEAL = prepared(`SELECT "seq", "hash", "prev_hash" FROM "norm_audit_seal"() WHERE "seq" IS NOT NULL`);

/**
 * A VM request's transaction appends early (the request, each approval step) and then does
 * most of its work, so this log keeps the events and stages them at the end, in order; the
 * unit of work calls `flush()` as the transaction's last step, and the commit seals them.
 */
export class PgDeferredAuditLog implements AuditLog {
  private readonly events: AuditEventInput[] = [];

  constructor(
    private readonly manager: EntityManager,
    private readonly now: () => Date = () => new Date(),
  ) {}

  append(event: AuditEventInput): Promise<void> {
    // Copied now: the caller may change its objects after appending.
    this.events.push({ ...event, before: asStored(event.before), after: asStored(event.after) });
    return Promise.resolve();
  }

  /** Events appended and not yet written. */
  get pending(): number {
    return this.events.length;
  }

  async flush(): Promise<void> {
    const events = this.events.splice(0);
    if (events.length === 0) return;
    if (!this.manager.queryRunner?.isTransactionActive)
      throw new Error('PgDeferredAuditLog.flush must run inside a transaction');
    await stage(this.manager, events, this.now());
  }
}

/** Stages `events` (already in their stored form, see asStored), all stamped `at`, for the commit to seal. */
async function stage(manager: EntityManager, events: readonly AuditEventInput[], at: Date): Promise<void> {
  await queryPrepared(manager, STAGE, [stagingRows(events, at, true)]);
}

/**
 * The JSON array `stagingInsert` reads, one object per event, in order, each with the body its
 * link will hash. `stored`: the events' before/after are already in their stored form (see
 * asStored); else they are put in it.
 */
export function stagingRows(events: readonly AuditEventInput[], at: Date, stored = false): string {
  return JSON.stringify(
    events.map((event) => {
      const fields = {
        at,
        actor: event.actor,
        action: event.action,
        objectType: event.objectType,
        objectId: event.objectId,
        before: stored ? (event.before ?? null) : asStored(event.before),
        after: stored ? (event.after ?? null) : asStored(event.after),
        reason: event.reason ?? null,
        requestId: event.requestId ?? null,
      };
      return {
        at,
        actor: fields.actor,
        action: fields.action,
        object_type: fields.objectType,
        object_id: fields.objectId,
        before: fields.before,
        after: fields.after,
        reason: fields.reason,
        request_id: fields.requestId,
        body: chainBody(fields),
      };
    }),
  );
}

/**
 * Appends audit events in the caller's transaction: pass the transaction's EntityManager,
 * as with OutboxWriterRepository, so the event commits or rolls back with the change:
 *
 *   await dataSource.transaction(async (tx) => {
 *     ...state change...
 *     await new PgAuditLog(tx).append({ actor, action, objectType, objectId, before, after });
 *   });
 *
 * Appending takes the chain lock until that transaction ends; keep such transactions short.
 */
export class PgAuditLog implements AuditLog {
  constructor(
    private readonly manager: EntityManager,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** For automated decisions that change nothing else: one event in its own transaction. */
  static async appendAlone(dataSource: DataSource, event: AuditEventInput): Promise<AuditRecord> {
    return dataSource.transaction((tx) => new PgAuditLog(tx).append(event));
  }

  async append(event: AuditEventInput): Promise<AuditRecord> {
    if (!this.manager.queryRunner?.isTransactionActive) {
      // Outside a transaction the lock would be released at once and two appends could fork the chain.
      throw new Error('PgAuditLog.append must run inside a transaction');
    }
    // The head, not the newest row, is what a new event chains onto: after the newest rows are
    // deleted, new events still chain onto the deleted one, so the deletion stays visible.
    const fields = {
      at: this.now(),
      actor: event.actor,
      action: event.action,
      objectType: event.objectType,
      objectId: event.objectId,
      before: asStored(event.before),
      after: asStored(event.after),
      reason: event.reason ?? null,
      requestId: event.requestId ?? null,
    };
    await stage(this.manager, [fields], fields.at);
    const result: unknown = await queryPrepared(this.manager, SEAL, []);
    const link = rowsOf<{ seq: string; hash: string; prev_hash: string }>(result)[0];
    if (!link) throw new Error('the staged audit event was not sealed');
    return { ...fields, seq: String(link.seq), hash: link.hash, prevHash: link.prev_hash };
  }
}

export class PgAuditReader implements AuditReader {
  constructor(private readonly dataSource: DataSource) {}

  async list(filter: AuditFilter): Promise<AuditPage> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown): void => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.actor !== undefined) add(`"actor" = ?`, filter.actor);
    if (filter.action !== undefined) add(`"action" = ?`, filter.action);
    if (filter.objectType !== undefined) add(`"object_type" = ?`, filter.objectType);
    if (filter.objectId !== undefined) add(`"object_id" = ?`, filter.objectId);
    if (filter.from !== undefined) add(`"at" >= ?`, filter.from);
    if (filter.to !== undefined) add(`"at" < ?`, filter.to);
    if (filter.cursor !== undefined) add(`"seq" < ?`, decodeCursor(filter.cursor));
    params.push(filter.limit + 1);
    const rows: AuditRow[] = await this.dataSource.query(
      `SELECT ${COLUMNS} FROM "audit_events" ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY "seq" DESC LIMIT $${params.length}`,
      params,
    );
    const items = rows.slice(0, filter.limit).map(toRecord);
    const last = items[items.length - 1];
    return rows.length > filter.limit && last ? { items, nextCursor: encodeCursor(last.seq) } : { items };
  }

  /**
   * One REPEATABLE READ snapshot for the head and every batch: appends committing meanwhile
   * move the head and add rows together, so neither is seen without the other.
   */
  async verify(): Promise<AuditVerification> {
    return this.dataSource.transaction('REPEATABLE READ', async (tx) => {
      const heads: Array<{ seq: string; hash: string }> = await tx.query(
        `SELECT "seq", "hash" FROM "audit_head" WHERE "id" = 1`,
      );
      const head: AuditHead | undefined = heads[0] && { seq: String(heads[0].seq), hash: heads[0].hash };
      const batch = 1_000;
      let expectedPrev = GENESIS_HASH;
      let last: AuditHead = GENESIS_HEAD;
      let checked = 0;
      const result = (firstBroken?: ReturnType<typeof checkHead>): AuditVerification => ({
        ok: firstBroken === undefined,
        checked,
        ...(firstBroken ? { firstBroken } : {}),
        ...(head ? { head } : {}),
      });
      for (;;) {
        const rows: AuditRow[] = await tx.query(
          `SELECT ${COLUMNS} FROM "audit_events" WHERE "seq" > $1 ORDER BY "seq" LIMIT $2`,
          [last.seq, batch],
        );
        for (const row of rows) {
          const record = toRecord(row);
          const broken = checkLink(expectedPrev, record);
          if (broken) return result(broken);
          expectedPrev = record.hash;
          last = { seq: record.seq, hash: record.hash };
          checked += 1;
        }
        if (rows.length < batch) return result(checkHead(head, last));
      }
    });
  }
}

function toRecord(row: AuditRow): AuditRecord {
  return {
    seq: String(row.seq),
    at: row.at,
    actor: row.actor,
    action: row.action,
    objectType: row.object_type,
    objectId: row.object_id,
    before: row.before,
    after: row.after,
    reason: row.reason,
    requestId: row.request_id,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

function encodeCursor(seq: string): string {
  return Buffer.from(`seq:${seq}`).toString('base64url');
}

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString();
  const m = /^seq:(\d{1,19})$/.exec(text);
  if (!m)
    throw new ValidationFailed('invalid cursor', [{ path: 'cursor', message: 'not a cursor from this API' }]);
  return m[1]!;
}
