import { type AuditEventInput } from '../audit';
import { DomainError } from '../errors';
import { type Clock, type Logger, type XenHostFactory } from '../ports';
import {
  endpointOf,
  type HostObservation,
  type HostStatus,
  type HostSyncStore,
  type HostSyncSuccess,
  type HostSyncTarget,
} from './host.port';
import { type LeaderLock } from './leader-lock.port';
import { observeHost } from './observe-host';

export interface HostSyncDeps {
  hosts: HostSyncStore;
  xen: XenHostFactory;
  lock: LeaderLock;
  clock: Clock;
  log: Logger;
  /** Records status changes (online ↔ unreachable), which are automated decisions. */
  audit?: (event: AuditEventInput) => Promise<unknown>;
}

export interface HostSyncOptions {
  intervalMs: number;
  /** Hosts read at once; each read is four commands on that host's pooled connection. */
  concurrency: number;
  /** Consecutive failed syncs before a host is marked unreachable. */
  unreachableAfter: number;
  /** How often a standby tries the leader lock; defaults to a fifth of the interval. */
  standbyRetryMs?: number;
}

/**
 * A standby tries the lock this many times per interval. Polling once per interval let a
 * hand-over take up to two (the lock freed just after a try, then a whole interval until the
 * next); five keeps it within one interval with the new leader's first pass included, for one
 * short-lived Postgres connection per try.
 */
const STANDBY_TRIES_PER_INTERVAL = 5;

export interface HostSyncPass {
  hosts: number;
  succeeded: number;
  failed: number;
  becameOnline: string[];
  becameUnreachable: string[];
  durationMs: number;
}

export type HostSyncStopReason = { reason: 'aborted'; passes: number };

const ACTOR = 'system:host-sync';

/**
 * Rows per statement when observations are written. Ten parameters a row keeps 500 rows far
 * below Postgres's 65,535 bind parameters, and one commit for a 200-host fleet.
 */
export const SYNC_WRITE_BATCH = 500;

/**
 * One pass over every host: read `xl info`, `xl list`, `xl list -l` and `vgs`, then write the
 * host's current state. A host failing never stops the others; drift is not acted on.
 *
 * Reading and writing are decoupled: a host's observation is handed to a group-commit writer
 * and its slot moves on to the next host at once. Writing each host in its own statement
 * held the slot for a round trip and a commit (200 commits a pass) while SSH sat idle; now
 * observations that arrive while one write is in flight go out together in the next.
 */
export async function syncHostsOnce(
  deps: Omit<HostSyncDeps, 'lock'>,
  options: Pick<HostSyncOptions, 'concurrency' | 'unreachableAfter'>,
  signal?: AbortSignal,
): Promise<HostSyncPass> {
  const started = Date.now();
  const hosts = await deps.hosts.listForSync();
  const pass: HostSyncPass = {
    hosts: hosts.length,
    succeeded: 0,
    failed: 0,
    becameOnline: [],
    becameUnreachable: [],
    durationMs: 0,
  };
  const writer = new GroupCommit((batch: HostSyncSuccess[]) => deps.hosts.recordSyncSuccesses(batch));
  const settled: Array<Promise<void>> = [];
  const tally = (host: HostSyncTarget, ok: boolean, status: HostStatus): void => {
    if (ok) pass.succeeded++;
    else pass.failed++;
    if (status !== host.status) {
      if (status === 'online') pass.becameOnline.push(host.name);
      if (status === 'unreachable') pass.becameUnreachable.push(host.name);
    }
  };
  await forEachBounded(hosts, options.concurrency, signal, async (host) => {
    let observation: HostObservation;
    try {
      observation = await observeHost(deps.xen.forHost(endpointOf(host)));
    } catch (err) {
      const status = await recordFailure(deps, options, host, err);
      tally(host, false, status ?? host.status);
      if (status !== undefined) await statusChanged(deps, host, status, describe(err));
      return;
    }
    settled.push(
      writer.write({ hostId: host.id, observation, at: deps.clock.now() }).then(
        async () => {
          tally(host, true, 'online');
          await statusChanged(deps, host, 'online', undefined);
        },
        (err: unknown) => {
          // The database is the problem, not the host: leave the host's status alone.
          deps.log.error('host sync could not record an observation', {
            host: host.name,
            hostId: host.id,
            error: describe(err),
          });
          tally(host, false, host.status);
        },
      ),
    );
  });
  await Promise.all(settled);
  pass.durationMs = Date.now() - started;
  return pass;
}

/** The host's status after one more failure, or undefined when even that could not be stored. */
async function recordFailure(
  deps: Omit<HostSyncDeps, 'lock'>,
  options: Pick<HostSyncOptions, 'unreachableAfter'>,
  host: HostSyncTarget,
  err: unknown,
): Promise<HostStatus | undefined> {
  const error = describe(err);
  try {
    const result = await deps.hosts.recordSyncFailure(
      host.id,
      error,
      deps.clock.now(),
      options.unreachableAfter,
    );
    deps.log.warn('host sync failed', {
      host: host.name,
      hostId: host.id,
      consecutiveFailures: result.consecutiveFailures,
      error,
      code: err instanceof DomainError ? err.code : undefined,
    });
    return result.status;
  } catch (storeErr) {
    // The database is the problem, not the host: leave the host's status alone.
    deps.log.error('host sync could not record a failure', { host: host.name, error: describe(storeErr) });
    return undefined;
  }
}

/** Logs and audits a status change once it is stored; the audit failing never fails the pass. */
async function statusChanged(
  deps: Omit<HostSyncDeps, 'lock'>,
  host: HostSyncTarget,
  next: HostStatus,
  error: string | undefined,
): Promise<void> {
  if (next === host.status) return;
  deps.log.info('host status changed', {
    host: host.name,
    hostId: host.id,
    from: host.status,
    to: next,
    error,
  });
  await deps
    .audit?.({
      actor: ACTOR,
      action: 'host.status',
      objectType: 'host',
      objectId: host.id,
      before: { status: host.status },
      after: { status: next },
      reason: error ?? 'host answered',
    })
    .catch((err: unknown) =>
      deps.log.error('host status audit failed', { host: host.name, error: describe(err) }),
    );
}

/**
 * Group commit: at most one write in flight; whatever arrives meanwhile waits and goes out
 * in the next write, so the batch size follows the load (1 when hosts answer slowly, the
 * whole fleet when they answer at once) and nothing waits for a timer.
 */
class GroupCommit<T> {
  private pending: Array<{ item: T; resolve: () => void; reject: (err: unknown) => void }> = [];
  private flushing = false;

  constructor(private readonly flush: (batch: T[]) => Promise<void>) {}

  write(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.flushing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, SYNC_WRITE_BATCH);
        try {
          await this.flush(batch.map((p) => p.item));
          for (const p of batch) p.resolve();
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}

/**
 * The sync loop. Every replica runs it; only the one holding the leader lock syncs, the
 * others retry the lock several times per interval, so a dead leader is replaced within one.
 * Returns only when `signal` aborts, saying why and how many passes it ran.
 */
export async function runHostSyncLoop(
  deps: HostSyncDeps,
  options: HostSyncOptions,
  signal: AbortSignal,
): Promise<HostSyncStopReason> {
  let passes = 0;
  const standbyRetryMs =
    options.standbyRetryMs ?? Math.max(1, Math.floor(options.intervalMs / STANDBY_TRIES_PER_INTERVAL));
  while (!signal.aborted) {
    let lease = null;
    try {
      lease = await deps.lock.tryAcquire();
    } catch (err) {
      deps.log.warn('host sync could not try the leader lock', { error: describe(err) });
    }
    if (!lease) {
      await pause(deps.clock, standbyRetryMs, signal);
      continue;
    }
    deps.log.info('host sync leading', {});
    const active = AbortSignal.any([signal, lease.lost]);
    try {
      while (!active.aborted) {
        try {
          const pass = await syncHostsOnce(deps, options, active);
          passes++;
          deps.log.debug('host sync pass', { ...pass });
        } catch (err) {
          // Listing hosts failed (database down): try again next interval rather than exit.
          deps.log.error('host sync pass failed', { error: describe(err) });
        }
        await pause(deps.clock, options.intervalMs, active);
      }
    } finally {
      await lease.release();
    }
    if (!signal.aborted) deps.log.warn('host sync lost leadership', { error: describe(lease.lost.reason) });
  }
  return { reason: 'aborted', passes };
}

async function pause(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  try {
    await clock.sleep(ms, signal);
  } catch {
    // Aborted: the caller's loop condition sees it.
  }
}

/** Runs `work` over `items` with at most `limit` in flight; stops starting new ones once aborted. */
export async function forEachBounded<T>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal | undefined,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && !signal?.aborted) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

function describe(err: unknown): string {
  if (err instanceof DomainError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
