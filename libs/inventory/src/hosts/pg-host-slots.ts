import { type HostSlots, type Logger, silentLogger } from '@norm/core';
import { Client } from 'pg';

export interface PgHostSlotsOptions {
  databaseUrl: string;
  /** Slots per host when the host sets no `limits.provisionConcurrency`. */
  defaultPerHost: number;
  /** Slots across every host and worker. */
  globalCap: number;
  /**
   * How often a waiter retries without a wake-up. A release NOTIFYs at once; polling only
   * covers a holder whose session ended (worker killed), which frees its locks silently.
   */
  pollMs: number;
  logger?: Logger;
}

const CHANNEL = 'norm_host_slots';
const GLOBAL_KEY = 'norm:provision-slot:global';
const hostKey = (hostId: string): string => `norm:provision-slot:host:${hostId}`;

interface Waiter {
  resolve: (slot: number) => void;
  reject: (error: Error) => void;
}

/** One key's slots as this worker sees them. */
interface KeyState {
  cap: number;
  /** Slots this worker holds: the session would grant them to it a second time. */
  held: Set<number>;
  queue: Waiter[];
  pumping: boolean;
  wake: (() => void) | undefined;
}

/**
 * The provisioning caps held across every worker process, with Postgres session advisory
 * locks: slot k of a key is the lock (hashtext(key), k), so a host with cap C has C locks and
 * whoever holds one may work on it. One session per worker holds all of that worker's slots,
 * so a worker that dies (kill -9, lost network) frees its slots with its session, without
 * expiry timers or a janitor. A release NOTIFYs the other workers so a waiter starts at once.
 *
 * Within a worker, waiters for one key queue in arrival order and only the head tries the
 * locks, so a release costs one query per waiting key, not one per waiting job. Session locks
 * are re-entrant for their session, so the slots this worker holds are excluded from its tries.
 */
export class PgHostSlots implements HostSlots {
  private session: Promise<Client> | undefined;
  /** Queries on the one session, one after the other (pg warns on overlapping queries). */
  private tail: Promise<unknown> = Promise.resolve();
  private readonly keys = new Map<string, KeyState>();
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly options: PgHostSlotsOptions) {
    this.log = options.logger ?? silentLogger;
  }

  async run<T>(hostId: string, perHost: number | undefined, work: () => Promise<T>): Promise<T> {
    const host = hostKey(hostId);
    const hostSlot = await this.acquire(host, Math.max(1, perHost ?? this.options.defaultPerHost));
    try {
      // Host first, then global: a job never holds one of the global slots while it queues for a busy host.
      const globalSlot = await this.acquire(GLOBAL_KEY, Math.max(1, this.options.globalCap));
      try {
        return await work();
      } finally {
        await this.release(GLOBAL_KEY, globalSlot);
      }
    } finally {
      await this.release(host, hostSlot);
    }
  }

  /** Slots held right now by every worker for one host (for tests and metrics). */
  async inFlight(hostId: string): Promise<number> {
    const rows = await this.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND classid = hashtext($1)::oid AND objsubid = 2`,
      [hostKey(hostId)],
    );
    return rows[0]?.n ?? 0;
  }

  /** Fails every waiter and ends the session, which frees every slot this worker still holds. */
  async close(): Promise<void> {
    this.closed = true;
    for (const st of this.keys.values()) {
      for (const w of st.queue.splice(0)) w.reject(new Error('host slots closed'));
      st.wake?.();
    }
    const session = this.session;
    this.session = undefined;
    if (session) await (await session.catch(() => undefined))?.end().catch(() => undefined);
  }

  private acquire(key: string, cap: number): Promise<number> {
    if (this.closed) return Promise.reject(new Error('host slots closed'));
    let st = this.keys.get(key);
    if (!st) {
      st = { cap, held: new Set(), queue: [], pumping: false, wake: undefined };
      this.keys.set(key, st);
    }
    st.cap = cap;
    const state = st;
    return new Promise<number>((resolve, reject) => {
      state.queue.push({ resolve, reject });
      if (!state.pumping) void this.pump(key, state);
    });
  }

  /** Serves the key's queue head by head until it is empty; one pump per key at a time. */
  private async pump(key: string, st: KeyState): Promise<void> {
    st.pumping = true;
    try {
      while (st.queue.length > 0 && !this.closed) {
        // Armed before the try, so a release landing between the try and the wait still wakes us.
        const woken = this.armWake(st);
        if (st.held.size < st.cap) {
          const slot = await this.tryLock(key, st.cap, st.held).catch((error: unknown) => {
            this.log.warn('host slot try failed; will retry', { key, error: (error as Error).message });
            return undefined;
          });
          if (slot !== undefined) {
            woken.cancel();
            st.held.add(slot);
            st.queue.shift()?.resolve(slot);
            continue;
          }
        }
        await woken.promise;
      }
    } finally {
      st.pumping = false;
      if (st.queue.length === 0 && st.held.size === 0) this.keys.delete(key);
    }
  }

  /** The first free slot below `cap` not already ours, locked; undefined when all are taken. */
  private async tryLock(key: string, cap: number, mine: ReadonlySet<number>): Promise<number | undefined> {
    // LIMIT 1 stops the scan at the first lock granted, so one call takes at most one slot.
    const rows = await this.query<{ s: number }>(
      `SELECT s FROM generate_series(0, $2::int - 1) AS s
        WHERE s <> ALL($3::int[]) AND pg_try_advisory_lock(hashtext($1), s) LIMIT 1`,
      [key, cap, [...mine]],
    );
    return rows[0]?.s;
  }

  private async release(key: string, slot: number): Promise<void> {
    try {
      await this.query(`SELECT pg_advisory_unlock(hashtext($1), $2), pg_notify($3, $1)`, [
        key,
        slot,
        CHANNEL,
      ]);
    } catch (error) {
      // A lost session has already dropped the lock; nothing is left to free.
      this.log.warn('host slot release failed', { key, slot, error: (error as Error).message });
    }
    const st = this.keys.get(key);
    if (!st) return;
    st.held.delete(slot);
    if (st.queue.length === 0 && st.held.size === 0 && !st.pumping) this.keys.delete(key);
    else st.wake?.();
  }

  private query<R extends object>(sql: string, params: unknown[]): Promise<R[]> {
    const run = this.tail.then(async () => (await (await this.connect()).query<R>(sql, params)).rows);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private armWake(st: KeyState): { promise: Promise<void>; cancel: () => void } {
    let done = (): void => undefined;
    const promise = new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), this.options.pollMs);
      done = (): void => {
        clearTimeout(timer);
        if (st.wake === done) st.wake = undefined;
        resolve();
      };
      st.wake = done;
    });
    return { promise, cancel: () => done() };
  }

  private connect(): Promise<Client> {
    this.session ??= (async () => {
      const client = new Client({
        connectionString: this.options.databaseUrl,
        application_name: 'norm-host-slots',
      });
      client.on('notification', (message) => {
        if (message.payload !== undefined) this.keys.get(message.payload)?.wake?.();
      });
      client.on('error', (error) => {
        // The session's locks went with it: other workers may now take slots this one still
        // uses until its running work ends. Say so, and open a new session for what follows.
        this.log.warn('host slot session lost; caps may be exceeded until running work ends', {
          error: error.message,
          held: [...this.keys.values()].reduce((n, st) => n + st.held.size, 0),
        });
        this.session = undefined;
        client.end().catch(() => undefined);
      });
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      return client;
    })().catch((error: unknown) => {
      this.session = undefined;
      throw error;
    });
    return this.session;
  }
}
