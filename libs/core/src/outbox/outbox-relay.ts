import { type Logger, silentLogger, systemClock } from '../ports';
import { type JobPublisher, type OutboxStore } from './outbox.port';

export interface OutboxRelayOptions {
  batchSize?: number;
  pollMs: number;
  logger?: Logger;
  /** Backoff after a failed batch (Redis down, say); the rows stay in Postgres meanwhile. */
  errorBackoffMs?: number;
}

export type RelayStopReason = 'aborted';

/**
 * Moves committed jobs from Postgres to the queue. Any number of relays may run (one per
 * worker): row locks with SKIP LOCKED keep them from publishing the same row at once, and a
 * re-publish after a crash is absorbed by the deterministic job id.
 */
export async function runOutboxRelay(
  store: OutboxStore,
  publisher: JobPublisher,
  options: OutboxRelayOptions,
  signal: AbortSignal,
): Promise<RelayStopReason> {
  const log = options.logger ?? silentLogger;
  const batchSize = options.batchSize ?? 100;
  while (!signal.aborted) {
    let relayed: number;
    try {
      relayed = await store.relayBatch(batchSize, (messages) =>
        publisher.publish(messages.map((m) => ({ name: m.jobName, jobId: m.jobId, payload: m.payload }))),
      );
      if (relayed > 0) log.debug('outbox relayed', { count: relayed });
    } catch (error) {
      log.warn('outbox relay failed; will retry', { error: (error as Error).message });
      // A plain sleep: new rows arriving while Redis is down must not cut the backoff short.
      await systemClock.sleep(options.errorBackoffMs ?? 1_000, signal).catch(() => undefined);
      continue;
    }
    // A full batch means more may be waiting: go again at once instead of sleeping.
    if (relayed < batchSize) await store.waitForWork(options.pollMs, signal).catch(() => undefined);
  }
  return 'aborted';
}
