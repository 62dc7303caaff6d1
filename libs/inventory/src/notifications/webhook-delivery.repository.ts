import {
  type ApprovalEventName,
  type DeliveryAttempt,
  type DeliveryFilter,
  type DeliveryStatus,
  type NewWebhookDelivery,
  type WebhookDeliveryRecord,
  type WebhookDeliveryStore,
  type WebhookDeliveryWriter,
} from '@norm/core';
import { type DataSource, type EntityManager } from 'typeorm';
import { rowsOf } from '../pg-errors';
import { CURSOR_AT, decodeCursor, page } from '../vm-requests/vm-request.repository';

interface Row {
  id: string;
  event_id: string;
  event: ApprovalEventName;
  subscription: string;
  vm_request_id: string | null;
  payload: Record<string, unknown>;
  status: DeliveryStatus;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  last_attempt_at: Date | null;
  next_attempt_at: Date | null;
  delivered_at: Date | null;
  created_at: Date;
}

function toRecord(r: Row): WebhookDeliveryRecord {
  return {
    id: r.id,
    eventId: r.event_id,
    event: r.event,
    subscription: r.subscription,
    requestId: r.vm_request_id,
    payload: r.payload,
    status: r.status,
    attempts: r.attempts,
    lastStatus: r.last_status,
    lastError: r.last_error,
    lastAttemptAt: r.last_attempt_at,
    nextAttemptAt: r.next_attempt_at,
    deliveredAt: r.delivered_at,
    createdAt: r.created_at,
  };
}

/** Inserts in the caller's transaction (pass the transaction's EntityManager). */
export class PgWebhookDeliveryWriter implements WebhookDeliveryWriter {
  constructor(private readonly manager: EntityManager) {}

  async insert(rows: readonly NewWebhookDelivery[]): Promise<void> {
    if (rows.length === 0) return;
    await this.manager.query(
      `INSERT INTO "webhook_deliveries" ("event_id", "event", "subscription", "vm_request_id", "payload",
         "next_attempt_at")
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::jsonb[], $6::timestamptz[])`,
      [
        rows.map((r) => r.eventId),
        rows.map((r) => r.event),
        rows.map((r) => r.subscription),
        rows.map((r) => r.requestId),
        rows.map((r) => JSON.stringify(r.payload)),
        rows.map((r) => r.at),
      ],
    );
  }
}

/** The senders' and the log's side of `webhook_deliveries`. */
export class PgWebhookDeliveryStore implements WebhookDeliveryStore {
  constructor(private readonly ds: DataSource) {}

  async claimDue(now: Date, leaseUntil: Date, limit: number): Promise<WebhookDeliveryRecord[]> {
    // One statement: the row locks last only while the lease is written, not during the call.
    const rows: unknown = await this.ds.query(
      `UPDATE "webhook_deliveries" d SET "next_attempt_at" = $2
        WHERE d."id" IN (
          SELECT "id" FROM "webhook_deliveries"
           WHERE "status" IN ('pending', 'retrying') AND "next_attempt_at" <= $1
           ORDER BY "next_attempt_at" LIMIT $3 FOR UPDATE SKIP LOCKED)
        RETURNING d.*`,
      [now, leaseUntil, limit],
    );
    return rowsOf<Row>(rows).map(toRecord);
  }

  async claim(id: string, leaseUntil: Date): Promise<WebhookDeliveryRecord | null> {
    const rows: unknown = await this.ds.query(
      `UPDATE "webhook_deliveries" SET "next_attempt_at" = $2
        WHERE "id" = $1 AND "status" <> 'delivered' RETURNING *`,
      [id, leaseUntil],
    );
    const row = rowsOf<Row>(rows)[0];
    return row ? toRecord(row) : null;
  }

  async record(id: string, a: DeliveryAttempt): Promise<void> {
    await this.ds.query(
      `UPDATE "webhook_deliveries" SET "status" = $2, "attempts" = $3, "last_status" = $4, "last_error" = $5,
              "last_attempt_at" = $6, "next_attempt_at" = $7, "delivered_at" = $8
        WHERE "id" = $1`,
      [id, a.status, a.attempts, a.lastStatus, a.lastError, a.lastAttemptAt, a.nextAttemptAt, a.deliveredAt],
    );
  }

  async list(filter: DeliveryFilter): Promise<{ items: WebhookDeliveryRecord[]; nextCursor?: string }> {
    const after = decodeCursor(filter.cursor);
    const rows = await this.ds.query<Array<Row & { cursor_at: string }>>(
      `SELECT *, ${CURSOR_AT} FROM "webhook_deliveries"
        WHERE ($1::text IS NULL OR "status" = $1) AND ($2::text IS NULL OR "event" = $2)
          AND ($3::text IS NULL OR "subscription" = $3) AND ($4::uuid IS NULL OR "vm_request_id" = $4)
          AND ($5::timestamptz IS NULL OR ("created_at", "id") < ($5::timestamptz, $6::uuid))
        ORDER BY "created_at" DESC, "id" DESC LIMIT $7`,
      [
        filter.status ?? null,
        filter.event ?? null,
        filter.subscription ?? null,
        filter.requestId ?? null,
        after?.at ?? null,
        after?.id ?? null,
        filter.limit + 1,
      ],
    );
    return page(rows, filter.limit, toRecord);
  }

  async get(id: string): Promise<WebhookDeliveryRecord | null> {
    const rows = await this.ds.query<Row[]>(`SELECT * FROM "webhook_deliveries" WHERE "id" = $1`, [id]);
    return rows[0] ? toRecord(rows[0]) : null;
  }
}
