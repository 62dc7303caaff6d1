import { createHash } from 'node:crypto';
import { type AuditBreak, type AuditHead, type AuditRecord } from './audit.port';

/** The first event's `prev_hash`: nothing precedes it. */
export const GENESIS_HASH = '0'.repeat(64);

/** The head of an empty chain. */
export const GENESIS_HEAD: AuditHead = { seq: '0', hash: GENESIS_HASH };

/**
 * JSON with object keys sorted at every depth. Postgres `jsonb` does not keep key order,
 * so the hash must not depend on it; arrays keep their order because it is meaningful.
 */
export function canonicalJson(value: unknown): string {
  // Loops and string concatenation rather than entries/filter/sort/map/join: every audit event
  // is prepared on the request path, and the intermediate arrays were most of its cost.
  if (value === null || value === undefined) return 'null';
  if (typeof value !== 'object') return JSON.stringify(value);
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const object = value as Record<string, unknown>;
  // The default sort compares UTF-16 code units, as `<` does.
  const keys = Object.keys(object).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const v = object[key];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${canonicalJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

/** The fields a link covers: everything but `seq` (identity values can skip after a rollback). */
export type ChainedFields = Omit<AuditRecord, 'seq' | 'hash' | 'prevHash'>;

/**
 * What a link hashes besides the previous hash: the event's fields as canonical JSON. Apart
 * from `chainLink`, so a writer can prepare it before it holds the chain lock.
 */
export function chainBody(event: ChainedFields): string {
  return canonicalJson({
    at: event.at,
    actor: event.actor,
    action: event.action,
    objectType: event.objectType,
    objectId: event.objectId,
    before: event.before,
    after: event.after,
    reason: event.reason,
    requestId: event.requestId,
  });
}

/**
 * One link: sha256 over the previous hash, a newline and the body (UTF-8), in hex. Postgres
 * computes the same as `encode(sha256(convert_to(prev || E'\n' || body, 'UTF8')), 'hex')`,
 * which PgDeferredAuditLog relies on (a medium test compares the two).
 */
export function chainLink(prevHash: string, body: string): string {
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

export function chainHash(prevHash: string, event: ChainedFields): string {
  return chainLink(prevHash, chainBody(event));
}

/**
 * Checks one link given the hash of the row before it. Two ways to break: the row's own
 * content no longer matches its hash (edited), or its `prev_hash` is not the hash of the
 * row now before it (a row between them was deleted, or the previous one was rewritten).
 */
export function checkLink(expectedPrev: string, row: AuditRecord): AuditBreak | undefined {
  if (row.prevHash !== expectedPrev) {
    return {
      seq: row.seq,
      problem: 'prev-hash-mismatch',
      detail: 'prev_hash does not match the preceding event: an event before it was deleted or replaced',
    };
  }
  if (chainHash(row.prevHash, row) !== row.hash) {
    return { seq: row.seq, problem: 'hash-mismatch', detail: 'the event was modified after it was written' };
  }
  return undefined;
}

/**
 * Compares where the chain ends (the last row whose link held, or GENESIS_HEAD for none) with
 * the recorded head. Run it only after every link held: a deleted middle row is reported by
 * `checkLink` at the row after it, and only deletions at the end leave the links intact.
 */
export function checkHead(head: AuditHead | undefined, last: AuditHead): AuditBreak | undefined {
  if (!head) {
    return {
      seq: last.seq,
      problem: 'head-missing',
      detail: 'the audit head row is missing: it was deleted, so the end of the chain cannot be checked',
    };
  }
  if (head.seq === last.seq && head.hash === last.hash) return undefined;
  if (BigInt(head.seq) > BigInt(last.seq)) {
    return {
      seq: head.seq,
      problem: 'truncated',
      detail: `the chain ends at seq ${last.seq} but the head records seq ${head.seq}: the newest event(s) were deleted`,
    };
  }
  return {
    seq: last.seq,
    problem: 'head-mismatch',
    detail: `the newest event (seq ${last.seq}) is not the recorded head (seq ${head.seq}): events were written around the audit log, or the head was rewritten`,
  };
}
