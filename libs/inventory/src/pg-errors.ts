/** True when `err` is Postgres' unique violation (23505) of the named constraint or index. */
export function isUniqueViolation(err: unknown, constraint: string): boolean {
  return pgError(err, '23505', constraint);
}

/** True when `err` is a foreign-key violation (23503) of the named constraint. */
export function isForeignKeyViolation(err: unknown, constraint: string): boolean {
  return pgError(err, '23503', constraint);
}

function pgError(err: unknown, code: string, constraint: string): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as {
    code?: string;
    constraint?: string;
    driverError?: { code?: string; constraint?: string };
  };
  const d = e.driverError ?? e;
  return d.code === code && d.constraint === constraint;
}

/**
 * TypeORM's postgres driver answers UPDATE/DELETE … RETURNING with `[rows, count]` and
 * SELECT/INSERT with `rows`; this reads both.
 */
export function rowsOf<T>(result: unknown): T[] {
  if (
    Array.isArray(result) &&
    result.length === 2 &&
    Array.isArray(result[0]) &&
    typeof result[1] === 'number'
  )
    return result[0] as T[];
  return result as T[];
}
