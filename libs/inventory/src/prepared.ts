import { createHash } from 'node:crypto';
import { type EntityManager } from 'typeorm';

/**
 * A statement Postgres parses and plans once per connection, then only binds and executes.
 * Unnamed statements are parsed and planned on every run: for the hot reads and writes of the
 * request path that was most of Postgres's CPU per call (a one-row instance read with its
 * deregistrations sub-select: ~12k/s unnamed against ~39k/s prepared, pgbench on this
 * machine). Only for SQL whose text is fixed: every distinct text is one statement kept by
 * each pooled connection for its lifetime, so text built from input would grow them without
 * bound.
 */
export interface PreparedStatement {
  readonly name: string;
  readonly text: string;
}

/** The name is the text's digest: one name never stands for two texts on a connection. */
export function prepared(text: string): PreparedStatement {
  return { name: `norm_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text };
}

/**
 * Runs a prepared statement on the manager's connection (its transaction's, when it has one).
 * TypeORM hands its first argument to node-postgres's `client.query` unchanged, and
 * node-postgres takes a `{ name, text }` config there; TypeORM still wraps errors
 * (QueryFailedError) and shapes the result exactly as for `manager.query(text, values)`.
 */
export function queryPrepared<T = unknown>(
  manager: EntityManager,
  statement: PreparedStatement,
  values: readonly unknown[],
): Promise<T> {
  return manager.query<T>(statement as unknown as string, values as unknown[]);
}
