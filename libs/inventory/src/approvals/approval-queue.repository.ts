import { type ApprovalBacklog, type ApprovalQueue, type InboxItem } from '@norm/core';
import { type DataSource } from 'typeorm';

interface InboxRow {
  vm_request_id: string;
  name: string;
  owner_id: string;
  lifecycle_class: 'cattle' | 'pet';
  step_name: string;
  step_index: number;
  groups: string[];
  detail: Record<string, unknown>;
  created_at: Date;
}

/** Reads over the approvals table (written by PgVmRequestStore.saveApprovals with each plan). */
export class PgApprovalQueue implements ApprovalQueue {
  constructor(private readonly dataSource: DataSource) {}

  async inbox(groups: readonly string[], limit: number): Promise<InboxItem[]> {
    const rows: InboxRow[] = await this.dataSource.query(
      `SELECT a."vm_request_id", r."name", r."owner_id", r."lifecycle_class", a."step_name", a."step_index",
              a."groups", a."detail", a."created_at"
         FROM "approvals" a JOIN "vm_requests" r ON r."id" = a."vm_request_id"
        WHERE a."status" = 'pending' AND a."kind" = 'manual' AND r."state" = 'pending_approval'
          AND a."groups" && $1::text[]
        ORDER BY a."created_at", a."step_index"
        LIMIT $2`,
      [groups, limit],
    );
    return rows.map((r) => ({
      requestId: r.vm_request_id,
      requestName: r.name,
      ownerId: r.owner_id,
      lifecycleClass: r.lifecycle_class,
      step: r.step_name,
      stepIndex: r.step_index,
      groups: r.groups,
      detail: r.detail,
      waitingSince: r.created_at,
    }));
  }

  async dueRequests(now: Date, limit: number): Promise<string[]> {
    const rows: Array<{ vm_request_id: string }> = await this.dataSource.query(
      `SELECT a."vm_request_id"
         FROM "approvals" a JOIN "vm_requests" r ON r."id" = a."vm_request_id"
        WHERE a."status" = 'pending' AND r."state" = 'pending_approval'
          AND jsonb_typeof(a."detail"->'dueAt') = 'string' AND (a."detail"->>'dueAt')::timestamptz <= $1
        GROUP BY a."vm_request_id"
        ORDER BY min((a."detail"->>'dueAt')::timestamptz)
        LIMIT $2`,
      [now, limit],
    );
    return rows.map((r) => r.vm_request_id);
  }

  async backlog(now: Date): Promise<ApprovalBacklog[]> {
    const rows: Array<{ step_name: string; waiting: number; oldest: number }> = await this.dataSource.query(
      `SELECT a."step_name", count(*)::int AS "waiting",
              greatest(0, extract(epoch FROM ($1::timestamptz - min(a."created_at"))))::float8 AS "oldest"
         FROM "approvals" a JOIN "vm_requests" r ON r."id" = a."vm_request_id"
        WHERE a."status" = 'pending' AND r."state" = 'pending_approval'
        GROUP BY a."step_name" ORDER BY a."step_name"`,
      [now],
    );
    return rows.map((r) => ({ step: r.step_name, waiting: r.waiting, oldestSeconds: r.oldest }));
  }
}
