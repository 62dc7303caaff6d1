import {
  assertHandlersComplete,
  handlePipelineProbe,
  type JobHandlers,
  type Logger,
  type NormConfig,
  runOutboxRelay,
} from '@norm/core';
import { OperationRepository, PgOutboxStore } from '@norm/inventory';
import { BullJobPublisher, createBullConnection, JobRunner } from '@norm/queue';
import { type Redis } from 'ioredis';
import { type DataSource } from 'typeorm';

/**
 * Everything the worker process runs: the job handlers (which live in libs/core; the
 * worker only hosts them) and the outbox relay. Built from injected infrastructure so the
 * same runtime starts in the app, in tests and in benchmarks.
 */
export class WorkerRuntime {
  private readonly connections: Redis[] = [];
  private readonly store: PgOutboxStore;
  private readonly publisher: BullJobPublisher;
  private readonly runner: JobRunner;
  private readonly relayAbort = new AbortController();
  private relay: Promise<unknown> | undefined;

  constructor(
    private readonly config: NormConfig,
    dataSource: DataSource,
    private readonly log: Logger,
  ) {
    const handlers: Partial<JobHandlers> = {
      PipelineProbe: handlePipelineProbe(new OperationRepository(dataSource)),
    };
    // Refuse to boot with a job nobody handles: it would otherwise fail only in production.
    assertHandlersComplete(handlers);
    this.store = new PgOutboxStore(dataSource, config.databaseUrl);
    this.publisher = new BullJobPublisher(this.connection(), config.redisPrefix);
    this.runner = new JobRunner({
      connection: this.connection(),
      prefix: config.redisPrefix,
      handlers,
      outbox: this.store,
      concurrency: config.workerConcurrency,
      lockDurationMs: config.jobLockMs,
      logger: log,
    });
  }

  start(): void {
    this.runner.start();
    this.relay = runOutboxRelay(
      this.store,
      this.publisher,
      { pollMs: this.config.outboxPollMs, logger: this.log },
      this.relayAbort.signal,
    );
    this.log.info('worker started', { concurrency: this.config.workerConcurrency });
  }

  /** Stops taking jobs, lets running ones finish within the grace period, then closes everything. */
  async stop(): Promise<void> {
    this.relayAbort.abort();
    await this.relay;
    const how = await this.runner.stop(this.config.shutdownGraceMs);
    this.log.info('worker stopped', { how, graceMs: this.config.shutdownGraceMs });
    await this.publisher.close();
    await this.store.close();
    await Promise.all(this.connections.map((c) => c.quit().catch(() => c.disconnect())));
  }

  private connection(): Redis {
    const connection = createBullConnection(this.config.redisUrl);
    this.connections.push(connection);
    return connection;
  }
}
