/**
 * The audit log as the domain sees it. Every state change and every automated decision
 * appends one event; libs/inventory implements the port over Postgres with a hash chain.
 * There is deliberately no switch to turn it off.
 */

/** Who acted: a principal id, `instance:<id>` for an instance credential, or `system:<loop>`. */
export type AuditActor = string;

export interface AuditEventInput {
  actor: AuditActor;
  /** `<resource>.<verb>`, e.g. `principal.create`, `token.revoke`. */
  action: string;
  objectType: string;
  objectId: string | null;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  /** The reason given, or the policy that decided. */
  reason?: string | null;
  requestId?: string | null;
}

export interface AuditRecord {
  seq: string;
  at: Date;
  actor: string;
  action: string;
  objectType: string;
  objectId: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  reason: string | null;
  requestId: string | null;
  prevHash: string;
  hash: string;
}

/**
 * Appends inside the caller's transaction, so the event commits or rolls back with the
 * state change it describes. Implementations serialize appends (the chain has one head).
 */
export interface AuditLog {
  /**
   * Records the event in the caller's transaction. It joins the chain when that transaction
   * commits, and may be written only just before the commit (see PgDeferredAuditLog), so
   * nothing here promises a sequence number early.
   */
  append(event: AuditEventInput): Promise<unknown>;
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  objectType?: string;
  objectId?: string;
  from?: Date;
  to?: Date;
  /** Opaque cursor from a previous page: events strictly older than it. */
  cursor?: string;
  limit: number;
}

export interface AuditPage {
  items: AuditRecord[];
  /** Absent on the last page. */
  nextCursor?: string;
}

/**
 * The chain's anchor: the seq and hash of the newest event, written in the same transaction
 * as every append. Links alone cannot show that the newest events were deleted (what is left
 * is still a valid chain); the head remembers where the chain must end.
 */
export interface AuditHead {
  seq: string;
  hash: string;
}

export type AuditBreak =
  | { seq: string; problem: 'hash-mismatch'; detail: string }
  | { seq: string; problem: 'prev-hash-mismatch'; detail: string }
  | { seq: string; problem: 'truncated'; detail: string }
  | { seq: string; problem: 'head-mismatch'; detail: string }
  | { seq: string; problem: 'head-missing'; detail: string };

export interface AuditVerification {
  ok: boolean;
  checked: number;
  /**
   * The first link that does not hold: an edited row, the row after a deleted one, or the
   * head when the newest rows were deleted (`truncated`).
   */
  firstBroken?: AuditBreak;
  /**
   * The recorded head. Keep a copy outside the database now and then: someone able to rewrite
   * the whole tail AND the head can only be caught by comparing with an outside copy.
   */
  head?: AuditHead;
}

export interface AuditReader {
  list(filter: AuditFilter): Promise<AuditPage>;
  /** Walks the whole chain in order and reports the first broken link. */
  verify(): Promise<AuditVerification>;
}
