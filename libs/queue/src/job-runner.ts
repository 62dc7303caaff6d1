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
    // One BullMQ worker per queue. It fetches until it holds as many jobs as its concurrency
    // (or the queue is empty) before it starts any, so a relayed burst starts late (bench/
    // provision: commit → handler start p50 ~300 ms). Splitting the concurrency over several
    // workers started them within ~100 ms but in an interleaved order, and the first hosts
    // then got their first job later: the provision ratio went from ~1.05 to ~1.06.
    for (const queue of QUEUE_NAMES) this.workers.push(this.createWorker(queue));
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

  private createWorker(queue: QueueName): Worker {
    const worker = new Worker(queue, (job) => this.process(job), {
      connection: this.options.connection,
      prefix: this.options.prefix,
      concurrency: this.options.concurrency,
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
