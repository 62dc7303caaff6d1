import {
  ApprovalService,
  assertHandlersComplete,
  checklistFromConfig,
  handleApprovalStepRun,
  handleInstanceAction,
  heartbeatOptionsOf,
  heartbeatTimeoutsOf,
  handlePipelineProbe,
  handleVmProvision,
  vmRequestServiceFromConfig,
  type JobHandlers,
  type Logger,
  type NormConfig,
  type ProvisionStep,
  runHostSyncLoop,
  reaperOptionsFromConfig,
  InstanceService,
  InstanceServiceReaperActions,
  runReaperLoop,
  buildDeregistrars,
  DeregistrationService,
  fetchWebhookPoster,
  processCommandRunner,
  runDeregistrationLoop,
  runApprovalTimeoutLoop,
  runWebhookDeliveryLoop,
  WebhookDeliveryService,
  webhookDeliveryOptions,
  type NormMetrics,
  noMetrics,
  runOutboxRelay,
  runStuckWorkLoop,
  systemClock,
  type XenHostFactory,
} from '@norm/core';
import {
  HostRepository,
  PgApprovalQueue,
  OperationRepository,
  PgAuditLog,
  PgHostSlots,
  PgLeaderLock,
  PgOutboxStore,
  PgReaperStore,
  PgDeregistrationStore,
  PgVmRequestUnitOfWork,
  PgWebhookDeliveryStore,
} from '@norm/inventory';
import { RedisReaperControl, RedisRevocationNotifier } from '@norm/platform';
import { BullJobPublisher, createBullConnection, JobRunner } from '@norm/queue';
import { hostname } from 'node:os';
import { type Redis } from 'ioredis';
import { type DataSource } from 'typeorm';

/** BullJobPublisher's attempts: the last one compensates instead of retrying. */
const JOB_ATTEMPTS = 5;
/** A guest that has not shut down on ACPI within a minute is not going to; it is forced off. */
const GUEST_SHUTDOWN_TIMEOUT_MS = 60_000;
/**
 * A free host slot is announced by NOTIFY at once; this poll only finds slots freed by a worker
 * that died (its session ended without a word), so a second is plenty.
 */
const HOST_SLOT_POLL_MS = 1_000;

/** The chaos tests' hook: log, then never return, so a kill -9 lands exactly before `step`. */
function pauseAt(step: ProvisionStep, log: Logger): (s: ProvisionStep, requestId: string) => Promise<void> {
  return (s, requestId) => {
    if (s !== step) return Promise.resolve();
    log.warn('provision paused for a test', { step, requestId });
    return new Promise<void>(() => undefined);
  };
}

function beforeStep(
  pause: ((s: ProvisionStep, requestId: string) => Promise<void>) | undefined,
  observe: ((s: ProvisionStep, requestId: string) => void) | undefined,
): { beforeStep?: (s: ProvisionStep, requestId: string) => Promise<void> } {
  if (!pause && !observe) return {};
  return {
    beforeStep: (s, requestId) => {
      observe?.(s, requestId);
      return pause ? pause(s, requestId) : Promise.resolve();
    },
  };
}

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
  private hostSync: Promise<unknown> | undefined;
  private reaper: Promise<unknown> | undefined;
  private deregistrationLoop: Promise<unknown> | undefined;
  private readonly deregistration: DeregistrationService;
  private stuckWork: Promise<unknown> | undefined;
  private approvalTimers: Promise<unknown> | undefined;
  private webhookSender: Promise<unknown> | undefined;
  private readonly webhooks: WebhookDeliveryService;
  private readonly approvals: ApprovalService;
  private readonly slots: PgHostSlots;
  private readonly vmRequests: {
    uow: PgVmRequestUnitOfWork;
    requests: ReturnType<typeof vmRequestServiceFromConfig>;
  };

  /**
   * `xen` is optional so a runtime without Xen access (tests of the job path) runs no host sync.
   * `observeProvisionStep` lets a benchmark time the steps; it must not block.
   */
  constructor(
    private readonly config: NormConfig,
    private readonly dataSource: DataSource,
    private readonly log: Logger,
    private readonly xen?: XenHostFactory,
    metrics: NormMetrics = noMetrics,
    observeProvisionStep?: (step: ProvisionStep, requestId: string) => void,
  ) {
    const operations = new OperationRepository(dataSource);
    const uow = new PgVmRequestUnitOfWork(dataSource);
    // One checklist for both: a bad policy file stops the worker at boot, like the API.
    const checklist = checklistFromConfig(config);
    this.vmRequests = {
      uow,
      requests: vmRequestServiceFromConfig(config, uow, systemClock, checklist, metrics),
    };
    this.approvals = new ApprovalService(
      uow,
      this.vmRequests.requests,
      checklist,
      new PgApprovalQueue(dataSource),
      systemClock,
      metrics,
    );
    this.webhooks = new WebhookDeliveryService(
      {
        store: new PgWebhookDeliveryStore(dataSource),
        subscriptions: checklist.subscriptions,
        http: fetchWebhookPoster,
        clock: systemClock,
        log,
        audit: (event) => PgAuditLog.appendAlone(dataSource, event),
        metrics,
      },
      webhookDeliveryOptions(config),
    );
    // One limiter for create/destroy/actions: the caps are about load on a host, whatever the verb.
    // Targets are built at boot so a bad target (a webhook without its secret) stops the worker here.
    this.deregistration = new DeregistrationService({
      store: new PgDeregistrationStore(dataSource),
      targets: buildDeregistrars(config.deregistrationTargets, {
        http: fetchWebhookPoster,
        commands: processCommandRunner,
        clock: systemClock,
        webhookSecret: config.deregistrationWebhookSecret,
        sensuApiKey: config.deregistrationSensuApiKey,
        chefClient: config.deregistrationChefClient,
        chefKeyPath: config.deregistrationChefKeyPath,
        puppetCertPath: config.deregistrationPuppetCertPath,
        puppetKeyPath: config.deregistrationPuppetKeyPath,
        puppetCaPath: config.deregistrationPuppetCaPath,
        spacewalkUser: config.deregistrationSpacewalkUser,
        spacewalkPassword: config.deregistrationSpacewalkPassword,
        dnsTsig: {
          keyName: config.deregistrationDnsTsigKeyName,
          secret: config.deregistrationDnsTsigSecret,
        },
        timeoutMs: config.deregistrationTimeoutMs,
      }),
      clock: systemClock,
      log,
      audit: (event) => PgAuditLog.appendAlone(dataSource, event),
    });
    // The caps hold across every worker process (Postgres advisory locks), not per process.
    this.slots = new PgHostSlots({
      databaseUrl: config.databaseUrl,
      defaultPerHost: config.provisionHostConcurrency,
      globalCap: config.provisionGlobalConcurrency,
      pollMs: HOST_SLOT_POLL_MS,
      logger: log,
    });
    const limiter = this.slots;
    const revocations = new RedisRevocationNotifier(this.connection(), config.redisPrefix);
    const handlers: Partial<JobHandlers> = {
      PipelineProbe: handlePipelineProbe(operations),
      VmProvision: handleVmProvision({
        uow,
        requests: this.vmRequests.requests,
        xen,
        limiter,
        clock: systemClock,
        log,
        options: { maxAttempts: JOB_ATTEMPTS, blockHostAfter: config.provisionBlockHostAfter },
        revocations,
        bootstrap: {
          ...(config.guestApiUrl ? { apiUrl: config.guestApiUrl } : {}),
          // The agent sleeps whole seconds.
          intervalS: Math.max(1, Math.round(config.guestHeartbeatIntervalMs / 1000)),
        },
        ...beforeStep(
          config.testPauseProvisionAt ? pauseAt(config.testPauseProvisionAt, log) : undefined,
          observeProvisionStep,
        ),
      }),
      ApprovalStepRun: handleApprovalStepRun(this.approvals),
      InstanceAction: handleInstanceAction({
        uow,
        operations,
        xen,
        limiter,
        clock: systemClock,
        log,
        maxAttempts: JOB_ATTEMPTS,
        shutdownTimeoutMs: GUEST_SHUTDOWN_TIMEOUT_MS,
        deregistration: this.deregistration,
        revocations,
      }),
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
    if (this.xen) this.hostSync = this.startHostSync(this.xen);
    if (this.xen) this.reaper = this.startReaper(this.xen);
    this.deregistrationLoop = runDeregistrationLoop(
      {
        service: this.deregistration,
        lock: new PgLeaderLock({
          databaseUrl: this.config.databaseUrl,
          name: 'deregistration',
          checkIntervalMs: 10_000,
          logger: this.log,
        }),
        clock: systemClock,
        log: this.log,
      },
      { intervalMs: this.config.deregistrationIntervalMs, batch: 50 },
      this.relayAbort.signal,
    ).then((stopped) => this.log.info('deregistration stopped', { ...stopped }));
    // Every worker sweeps: the versioned job id makes two sweeps of one stall enqueue one job.
    this.stuckWork = runStuckWorkLoop(
      { ...this.vmRequests, clock: systemClock, log: this.log },
      {
        resumeAfterMs: this.config.provisionResumeAfterMs,
        giveUpAfterMs: this.config.provisionGiveUpAfterMs,
        intervalMs: this.config.stuckWorkIntervalMs,
        batch: 50,
      },
      this.relayAbort.signal,
    );
    // Every worker fires timers: the per-request lock and versioned update make a timer fire once.
    this.approvalTimers = runApprovalTimeoutLoop(
      { approvals: this.approvals, clock: systemClock, log: this.log },
      { intervalMs: this.config.approvalTimerIntervalMs, batch: 50 },
      this.relayAbort.signal,
    );
    // Every worker sends: claims skip rows another sender holds.
    this.webhookSender = runWebhookDeliveryLoop(
      { service: this.webhooks, clock: systemClock, log: this.log },
      { intervalMs: this.config.webhookDeliveryIntervalMs, batch: 20 },
      this.relayAbort.signal,
    );
    this.log.info('worker started', { concurrency: this.config.workerConcurrency, hostSync: !!this.xen });
  }

  /** Stops taking jobs, lets running ones finish within the grace period, then closes everything. */
  async stop(): Promise<void> {
    this.relayAbort.abort();
    await this.relay;
    await this.hostSync;
    await this.reaper;
    await this.deregistrationLoop;
    await this.stuckWork;
    await this.approvalTimers;
    await this.webhookSender;
    const how = await this.runner.stop(this.config.shutdownGraceMs);
    this.log.info('worker stopped', { how, graceMs: this.config.shutdownGraceMs });
    await this.publisher.close();
    await this.store.close();
    await this.slots.close();
    await Promise.all(this.connections.map((c) => c.quit().catch(() => c.disconnect())));
  }

  /** Every worker runs the loop; the advisory lock makes exactly one of them sync at a time. */
  private startHostSync(xen: XenHostFactory): Promise<unknown> {
    const dataSource = this.dataSource;
    return runHostSyncLoop(
      {
        hosts: new HostRepository(dataSource.manager),
        xen,
        lock: new PgLeaderLock({
          databaseUrl: this.config.databaseUrl,
          name: 'host-sync',
          checkIntervalMs: Math.min(this.config.hostSyncIntervalMs, 10_000),
          logger: this.log,
        }),
        clock: systemClock,
        log: this.log,
        audit: (event) => PgAuditLog.appendAlone(dataSource, event),
      },
      {
        intervalMs: this.config.hostSyncIntervalMs,
        concurrency: this.config.hostSyncConcurrency,
        unreachableAfter: this.config.hostUnreachableAfter,
      },
      this.relayAbort.signal,
    ).then((stopped) => this.log.info('host sync stopped', { ...stopped }));
  }

  /**
   * Every worker runs the reaper loop; its own advisory lock (not host sync's) makes exactly
   * one reap. It acts only through instance actions, so its effects are jobs like any other.
   */
  private startReaper(xen: XenHostFactory): Promise<unknown> {
    const dataSource = this.dataSource;
    const instances = new InstanceService(
      new PgVmRequestUnitOfWork(dataSource),
      new OperationRepository(dataSource),
      systemClock,
      // An automated action left open this long is stuck, as for the API's.
      { operationDeadlineMs: 15 * 60_000, heartbeat: heartbeatOptionsOf(this.config) },
    );
    const controlRedis = this.connection();
    return runReaperLoop(
      {
        store: new PgReaperStore(dataSource, heartbeatTimeoutsOf(this.config)),
        actions: new InstanceServiceReaperActions(instances, this.log),
        xen,
        lock: new PgLeaderLock({
          databaseUrl: this.config.databaseUrl,
          name: 'reaper',
          checkIntervalMs: 10_000,
          logger: this.log,
        }),
        clock: systemClock,
        log: this.log,
        audit: (event) => PgAuditLog.appendAlone(dataSource, event),
        control: new RedisReaperControl(controlRedis, this.config.redisPrefix),
        workerId: `${hostname()}:${process.pid}`,
      },
      reaperOptionsFromConfig(this.config),
      this.relayAbort.signal,
    ).then((stopped) => this.log.info('reaper stopped', { ...stopped }));
  }

  private connection(): Redis {
    const connection = createBullConnection(this.config.redisUrl);
    this.connections.push(connection);
    return connection;
  }
}
