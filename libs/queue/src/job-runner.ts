import {
  isJobName,
  type JobHandlers,
  type JobName,
  type Logger,
  type OutboxStore,
  parseJobPayload,
  QUEUE_NAMES,
  silentLogger,
  type QueueName,
} from '@norm/core';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { type Redis } from 'ioredis';
import { ZodError } from 'zod';

/** The most jobs one BullMQ worker fetches before it starts any (see `start`). */
const FETCH_AHEAD = 32;

export interface JobRunnerOptions {
  connection: Redis;
  prefix: string;
  handlers: JobHandlers;
  outbox: OutboxStore;
  concurrency: number;
  lockDurationMs: number;
  logger?: Logger;
}

/**
 * Hosts the catalogue's handlers on BullMQ workers, one per queue. Each job's payload is
 * validated again here, and a job whose outbox row is already completed is skipped, so a
 * redelivery after a crash never runs a finished job twice.
 */
export class JobRunner {
  private readonly workers: Worker[] = [];
  private readonly log: Logger;
  private readonly aborts = new Set<AbortController>();

  constructor(private readonly options: JobRunnerOptions) {
    this.log = options.logger ?? silentLogger;
  }

  start(): void {
    // BullMQ's worker keeps fetching while it has room (up to its concurrency) and starts what
    // it fetched only when a fetch comes back empty: under a steady stream of new jobs (a
    // burst of requests being relayed) it started none for half a second (bench/provision).
    // Several workers of at most FETCH_AHEAD each start theirs after that many fetches at most.
    const workers = Math.ceil(this.options.concurrency / FETCH_AHEAD);
    const each = Math.ceil(this.options.concurrency / workers);
    for (const queue of QUEUE_NAMES)
      for (let i = 0; i < workers; i++) this.workers.push(this.createWorker(queue, each));
  }

  /**
   * Stops taking jobs and waits for running ones up to `graceMs`; past that, running
   * handlers are told to abort and the worker closes. Their jobs are retried elsewhere
   * once their locks expire, which is safe because handlers are idempotent.
   */
  async stop(graceMs: number): Promise<'drained' | 'forced'> {
    const closing = Promise.all(this.workers.map((w) => w.close()));
    const timedOut = await Promise.race([
      closing.then(() => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(true), graceMs).unref()),
    ]);
    if (!timedOut) return 'drained';
    this.log.warn('shutdown grace expired; aborting running jobs', { graceMs, running: this.aborts.size });
    for (const abort of this.aborts) abort.abort(new Error('worker shutting down'));
    await Promise.all(this.workers.map((w) => w.close(true)));
    return 'forced';
  }

  private createWorker(queue: QueueName, concurrency: number): Worker {
    const worker = new Worker(queue, (job) => this.process(job), {
      connection: this.options.connection,
      prefix: this.options.prefix,
      concurrency,
      lockDuration: this.options.lockDurationMs,
      autorun: true,
    });
    worker.on('failed', (job, error) => {
      this.log.warn('job failed', {
        queue,
        jobId: job?.id,
        name: job?.name,
        attempt: job?.attemptsMade,
        error: error.message,
      });
    });
    worker.on('error', (error) => this.log.error('queue worker error', { queue, error: error.message }));
    return worker;
  }

  private async process(job: Job): Promise<void> {
    const name = job.name;
    const jobId = job.id ?? '';
    if (!isJobName(name)) throw new UnrecoverableError(`unknown job ${name}`);
    let payload: unknown;
    try {
      payload = parseJobPayload(name, job.data);
    } catch (error) {
      // A payload that does not match its schema will never match it: fail without retries.
      if (error instanceof ZodError)
        throw new UnrecoverableError(`invalid payload for ${name}: ${error.message}`);
      throw error;
    }
    if (await this.options.outbox.isCompleted(jobId)) {
      this.log.info('job already completed; skipping redelivery', { jobId, name });
      return;
    }
    const abort = new AbortController();
    this.aborts.add(abort);
    try {
      await this.runHandler(name, payload, { jobId, attempt: job.attemptsMade + 1, signal: abort.signal });
      await this.options.outbox.markCompleted(jobId);
    } finally {
      this.aborts.delete(abort);
    }
  }

  private runHandler(
    name: JobName,
    payload: unknown,
    ctx: { jobId: string; attempt: number; signal: AbortSignal },
  ): Promise<void> {
    const handler = this.options.handlers[name] as (p: unknown, c: typeof ctx) => Promise<void>;
    return handler(payload, ctx);
  }
}
