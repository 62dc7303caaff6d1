/**
 * Leadership for loops that must run exactly once across replicas. Implemented with a
 * Postgres session advisory lock held on a dedicated connection: when the holder dies, its
 * connection closes and Postgres frees the lock, so another replica takes over.
 */
export interface LeaderLease {
  /** Aborted when leadership is lost (the connection died); stop acting at once. */
  readonly lost: AbortSignal;
  /** Gives leadership up; safe to call more than once. */
  release(): Promise<void>;
}

export interface LeaderLock {
  /** Leadership now, or null when another replica holds it. Never waits. */
  tryAcquire(): Promise<LeaderLease | null>;
}
