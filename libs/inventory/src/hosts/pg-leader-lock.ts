import { type LeaderLease, type LeaderLock, type Logger } from '@norm/core';
import { Client } from 'pg';

export interface PgLeaderLockOptions {
  databaseUrl: string;
  /** Names the loop; two loops with different names lead independently. */
  name: string;
  /**
   * How often the holder checks its connection is alive. A half-open TCP connection fails no
   * query until one is sent, so without this a partitioned leader would believe it still leads.
   */
  checkIntervalMs: number;
  logger: Logger;
}

/**
 * A session-level `pg_try_advisory_lock` on a connection of its own. A pooled connection would
 * not do: the pool could hand the session (and the lock) to another query, or close it idle.
 */
export class PgLeaderLock implements LeaderLock {
  constructor(private readonly opts: PgLeaderLockOptions) {}

  async tryAcquire(): Promise<LeaderLease | null> {
    const client = new Client({
      connectionString: this.opts.databaseUrl,
      application_name: `norm-leader:${this.opts.name}`,
      keepAlive: true,
    });
    const lost = new AbortController();
    // A connection error after acquisition means the lock may already be someone else's.
    client.on('error', (error) => lost.abort(error));
    client.on('end', () => lost.abort(new Error('leader connection closed')));
    await client.connect();
    let held = false;
    try {
      const rows = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext($1)) AS "ok"`, [
        `norm:leader:${this.opts.name}`,
      ]);
      held = rows.rows[0]?.ok === true;
    } finally {
      if (!held) await client.end().catch(() => undefined);
    }
    if (!held) return null;

    const timer = setInterval(() => {
      client.query('SELECT 1').catch((error: unknown) => {
        this.opts.logger.warn('leader connection check failed', {
          name: this.opts.name,
          error: String(error),
        });
        lost.abort(error);
        void client.end().catch(() => undefined);
      });
    }, this.opts.checkIntervalMs);
    timer.unref();
    let released = false;
    return {
      lost: lost.signal,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        // Closing the session frees the lock; no explicit unlock needed (or possible if it died).
        await client.end().catch(() => undefined);
      },
    };
  }
}
