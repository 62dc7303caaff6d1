import {
  type DeregistrationEvent,
  type DeregistrationRecord,
  type DeregistrationStatus,
  type DeregistrationStore,
} from '@norm/core';
import { type DataSource } from 'typeorm';
import { PgAuditLog } from '../audit/audit.repository';

interface Row {
  id: string;
  instance_id: string;
  target: string;
  status: DeregistrationStatus;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = `"id", "instance_id", "target", "status", "attempts", "last_error", "next_attempt_at", "created_at",
  "updated_at"`;

function toRecord(r: Row): DeregistrationRecord {
  return {
    id: r.id,
    instanceId: r.instance_id,
    target: r.target,
    status: r.status,
    attempts: r.attempts,
    lastError: r.last_error,
    nextAttemptAt: r.next_attempt_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Per-target deregistration rows on Postgres (`deregistrations`, unique per instance and target). */
export class PgDeregistrationStore implements DeregistrationStore {
  constructor(private readonly ds: DataSource) {}

  async ensure(instanceId: string, targets: readonly string[], retryFrom: Date): Promise<void> {
    if (targets.length === 0) return;
    await this.ds.query(
      `INSERT INTO "deregistrations" ("instance_id", "target", "next_attempt_at")
       SELECT $1, t, $3 FROM unnest($2::text[]) AS t
       ON CONFLICT ("instance_id", "target") DO NOTHING`,
      [instanceId, targets, retryFrom],
    );
  }

  async forInstance(instanceId: string): Promise<DeregistrationRecord[]> {
    const rows = await this.ds.query<Row[]>(
      `SELECT ${COLUMNS} FROM "deregistrations" WHERE "instance_id" = $1 ORDER BY "target"`,
      [instanceId],
    );
    return rows.map(toRecord);
  }

  async due(now: Date, limit: number): Promise<DeregistrationRecord[]> {
    const rows = await this.ds.query<Row[]>(
      `SELECT ${COLUMNS} FROM "deregistrations"
        WHERE "status" IN ('pending', 'failed') AND ("next_attempt_at" IS NULL OR "next_attempt_at" <= $1)
        ORDER BY "next_attempt_at" NULLS FIRST, "created_at" LIMIT $2`,
      [now, limit],
    );
    return rows.map(toRecord);
  }

  async record(
    id: string,
    p: {
      status: DeregistrationStatus;
      attempts: number;
      lastError: string | null;
      nextAttemptAt: Date | null;
    },
  ): Promise<void> {
    await this.ds.query(
      `UPDATE "deregistrations" SET "status" = $2, "attempts" = $3, "last_error" = $4, "next_attempt_at" = $5,
              "updated_at" = now()
        WHERE "id" = $1`,
      [id, p.status, p.attempts, p.lastError, p.nextAttemptAt],
    );
  }

  async list(filter: {
    status?: DeregistrationStatus;
    instanceId?: string;
    limit: number;
  }): Promise<DeregistrationRecord[]> {
    const rows = await this.ds.query<Row[]>(
      `SELECT ${COLUMNS} FROM "deregistrations"
        WHERE ($1::text IS NULL OR "status" = $1) AND ($2::uuid IS NULL OR "instance_id" = $2)
        ORDER BY "updated_at" DESC LIMIT $3`,
      [filter.status ?? null, filter.instanceId ?? null, filter.limit],
    );
    return rows.map(toRecord);
  }

  async get(id: string): Promise<DeregistrationRecord | null> {
    const rows = await this.ds.query<Row[]>(`SELECT ${COLUMNS} FROM "deregistrations" WHERE "id" = $1`, [id]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async eventFor(instanceId: string, at: Date): Promise<DeregistrationEvent | null> {
    const rows = await this.ds.query<
      Array<{
        id: string;
        name: string;
        domain_name: string;
        ip: string | null;
        mac: string | null;
        labels: Record<string, string>;
      }>
    >(
      `SELECT "id", "name", "domain_name", host("ip") AS "ip", "mac", "labels" FROM "instances" WHERE "id" = $1`,
      [instanceId],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      event: 'instance.decommissioned',
      instanceId: r.id,
      name: r.name,
      domainName: r.domain_name,
      ip: r.ip,
      mac: r.mac,
      labels: r.labels,
      at: at.toISOString(),
    };
  }

  async completeInstance(instanceId: string): Promise<boolean> {
    return this.ds.transaction(async (tx) => {
      const moved = await tx.query<Array<{ id: string }>>(
        `UPDATE "instances" SET "state" = 'decommissioned', "domid" = NULL, "version" = "version" + 1,
                "updated_at" = now()
          WHERE "id" = $1 AND "state" = 'decommissioning'
            AND NOT EXISTS (SELECT 1 FROM "deregistrations" d WHERE d."instance_id" = $1 AND d."status" <> 'done')
          RETURNING "id"`,
        [instanceId],
      );
      if (moved.length === 0) return false;
      await new PgAuditLog(tx).append({
        actor: 'system:deregistration',
        action: 'instance.decommissioned',
        objectType: 'instance',
        objectId: instanceId,
        before: { state: 'decommissioning' },
        after: { state: 'decommissioned' },
        reason: 'every deregistration target done',
      });
      return true;
    });
  }
}
