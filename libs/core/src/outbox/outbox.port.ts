import { type JobName } from '../jobs';

export interface OutboxMessage {
  id: string;
  jobName: string;
  jobId: string;
  payload: Record<string, unknown>;
}

/** A job to write with other rows in one statement (same rule: a `jobId` already written is skipped). */
export interface NewOutboxJob {
  name: JobName;
  jobId: string;
  payload: Record<string, unknown>;
}

/** Writes a job in the caller's transaction. Implemented by libs/inventory. */
export interface OutboxWriter {
  /** Same `jobId` twice is one job (ON CONFLICT DO NOTHING): returns false for the duplicate. */
  enqueue(name: JobName, jobId: string, payload: Record<string, unknown>): Promise<boolean>;
}

/** The relay's view of the outbox table. */
export interface OutboxStore {
  /**
   * Claims up to `limit` undispatched rows (skipping rows another relay holds), lets `publish`
   * put them on the queue, then marks them dispatched, all in one transaction: a crash before
   * the commit leaves them undispatched, and the deterministic job id makes the re-publish a no-op.
   */
  relayBatch(limit: number, publish: (messages: OutboxMessage[]) => Promise<void>): Promise<number>;
  /**
   * Resolves when a NOTIFY arrives or `ms` passes, whichever is first; at once when one arrived
   * since the last `relayBatch` began (its rows may have committed after that batch's read).
   */
  waitForWork(ms: number, signal: AbortSignal): Promise<void>;
  isCompleted(jobId: string): Promise<boolean>;
  markCompleted(jobId: string): Promise<void>;
}

/** Puts jobs on the queue. Implemented over BullMQ by libs/queue. */
export interface JobPublisher {
  publish(
    messages: ReadonlyArray<{ name: string; jobId: string; payload: Record<string, unknown> }>,
  ): Promise<void>;
}
