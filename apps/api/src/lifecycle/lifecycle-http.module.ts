import { type DynamicModule, Inject, Module, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import {
  AlertmanagerIntake,
  buildDeregistrars,
  reaperOptionsFromConfig,
  DeregistrationService,
  fetchWebhookPoster,
  processCommandRunner,
  SensuIntake,
  HeartbeatBuffer,
  HeartbeatService,
  heartbeatTimeoutsOf,
  LifecycleService,
  type Logger,
  type NormConfig,
  systemClock,
  type XenHostFactory,
} from '@norm/core';
import { PgAuditLog, PgDeregistrationStore, PgHeartbeatStore, PgReaperStore } from '@norm/inventory';
import { NORM_CONFIG, NORM_LOGGER, RedisReaperControl } from '@norm/platform';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { unconfiguredXenHostFactory } from '../hosts/xen-host-factory.token';
import { DeregistrationsController } from './deregistrations.controller';
import { HeartbeatController } from './heartbeat.controller';
import { IntegrationsController } from './integrations.controller';
import { LifecycleController } from './lifecycle.controller';

/**
 * 250 ms: a beat is durable long before any deadline (minutes), and at thousands of beats
 * per second one statement carries hundreds of them.
 */
const FLUSH_INTERVAL_MS = 250;
/** Bind parameters per statement stay far below Postgres's 65535. */
const MAX_BATCH = 5000;

/** Heartbeat intake (one in-process buffer per replica) and the operator's view of the reaper. */
@Module({})
export class LifecycleHttpModule implements OnModuleInit, OnModuleDestroy {
  constructor(@Inject(HeartbeatBuffer) private readonly buffer: HeartbeatBuffer) {}

  /** `xen` lets the preview ask hosts for `xl list`; without it every host shows as unreachable. */
  static forRoot(options: { xen?: XenHostFactory | undefined } = {}): DynamicModule {
    return {
      module: LifecycleHttpModule,
      controllers: [
        HeartbeatController,
        LifecycleController,
        DeregistrationsController,
        IntegrationsController,
      ],
      providers: [
        {
          provide: HeartbeatBuffer,
          inject: [NORM_CONFIG, DataSource, NORM_LOGGER],
          useFactory: (config: NormConfig, ds: DataSource, log: Logger) => {
            return new HeartbeatBuffer(new PgHeartbeatStore(ds), systemClock, log, {
              flushIntervalMs: FLUSH_INTERVAL_MS,
              maxBatch: MAX_BATCH,
              timeouts: heartbeatTimeoutsOf(config),
            });
          },
        },
        {
          provide: HeartbeatService,
          inject: [HeartbeatBuffer],
          useFactory: (b: HeartbeatBuffer) => new HeartbeatService(b),
        },
        {
          provide: AlertmanagerIntake,
          inject: [HeartbeatBuffer, DataSource],
          useFactory: (buffer: HeartbeatBuffer, ds: DataSource) =>
            new AlertmanagerIntake(buffer, new PgHeartbeatStore(ds), () => new Date()),
        },
        {
          provide: SensuIntake,
          inject: [HeartbeatBuffer, DataSource],
          useFactory: (buffer: HeartbeatBuffer, ds: DataSource) =>
            new SensuIntake(buffer, new PgHeartbeatStore(ds), () => new Date()),
        },
        {
          provide: LifecycleService,
          inject: [NORM_CONFIG, DataSource, Redis, NORM_LOGGER],
          useFactory: (config: NormConfig, ds: DataSource, redis: Redis, log: Logger) => {
            return new LifecycleService(
              {
                store: new PgReaperStore(ds, heartbeatTimeoutsOf(config)),
                xen: options.xen ?? unconfiguredXenHostFactory,
                control: new RedisReaperControl(redis, config.redisPrefix),
                clock: systemClock,
                log,
                audit: (event) => PgAuditLog.appendAlone(ds, event),
              },
              reaperOptionsFromConfig(config),
            );
          },
        },
        {
          provide: DeregistrationService,
          inject: [NORM_CONFIG, DataSource, NORM_LOGGER],
          useFactory: (config: NormConfig, ds: DataSource, log: Logger) =>
            new DeregistrationService({
              store: new PgDeregistrationStore(ds),
              // The same targets as the worker's, so an operator's retry runs here at once.
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
              audit: (event) => PgAuditLog.appendAlone(ds, event),
            }),
        },
      ],
    };
  }

  onModuleInit(): void {
    this.buffer.start();
  }

  /** Writes what is still buffered, so a graceful shutdown loses no beat. */
  async onModuleDestroy(): Promise<void> {
    await this.buffer.stop();
  }
}
