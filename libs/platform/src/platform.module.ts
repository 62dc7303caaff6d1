import { type DynamicModule, Global, Module } from '@nestjs/common';
import { loadConfig, type NormConfig } from '@norm/core';
import { LoggerModule } from 'nestjs-pino';
import { type DestinationStream, type Logger as Pino } from 'pino';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { dataSourceProvider } from './database/data-source.provider';
import { PinoLoggerAdapter } from './logging/pino-logger.adapter';
import { PromMetrics } from './metrics/prom-metrics';
import { createRootLogger, type PlatformApp } from './logging/root-logger';
import { PlatformLifecycle } from './platform-lifecycle';
import { redisProvider } from './redis/redis.provider';
import { NORM_CONFIG, NORM_LOGGER, NORM_PINO } from './tokens';

export interface PlatformOptions {
  app: PlatformApp;
  /**
   * Configuration already read by `loadConfigOrExit` in main.ts (or built by a test). When
   * absent it is read from the environment while the module graph starts, and a bad
   * environment fails the boot with `ConfigInvalid` listing every bad variable.
   */
  config?: NormConfig;
  /** Where log lines go; stdout when absent. Tests and benchmarks pass their own stream. */
  logDestination?: DestinationStream;
}

/** Config and logging: what every other provider (and nestjs-pino) depends on. */
@Module({})
class PlatformFoundationModule {}

/**
 * Everything a Norm process needs before it does anything useful: typed config, structured
 * logging, Postgres and Redis. Global, so feature modules inject these without importing.
 *
 * Provides: NORM_CONFIG (NormConfig), NORM_LOGGER (the core `Logger` port), NORM_PINO (root
 * pino), `DataSource` (initialized TypeORM data source) and `Redis` (general-purpose ioredis
 * client, not for BullMQ), and nestjs-pino's Nest `Logger` (use it with
 * `app.useLogger(app.get(Logger))`), and `PromMetrics` (the process's Prometheus registry).
 * HTTP hosts add `registerRequestLogging` on Fastify.
 */
@Global()
@Module({})
export class PlatformModule {
  static forRoot(options: PlatformOptions): DynamicModule {
    const foundation: DynamicModule = {
      module: PlatformFoundationModule,
      providers: [
        { provide: NORM_CONFIG, useFactory: (): NormConfig => options.config ?? loadConfig() },
        {
          provide: NORM_PINO,
          inject: [NORM_CONFIG],
          useFactory: (config: NormConfig): Pino =>
            createRootLogger({
              app: options.app,
              level: config.logLevel,
              destination: options.logDestination,
            }),
        },
        {
          provide: NORM_LOGGER,
          inject: [NORM_PINO],
          useFactory: (root: Pino) => new PinoLoggerAdapter(root),
        },
      ],
      exports: [NORM_CONFIG, NORM_PINO, NORM_LOGGER],
    };
    const logging = LoggerModule.forRootAsync({
      imports: [foundation],
      inject: [NORM_PINO],
      // nestjs-pino carries Nest's own log lines (use `app.useLogger(app.get(Logger))`). It
      // installs no middleware: HTTP hosts log requests with `registerRequestLogging`.
      useFactory: (root: Pino) => ({ pinoHttp: { logger: root }, forRoutes: [] }),
    });
    return {
      module: PlatformModule,
      global: true,
      imports: [foundation, logging],
      providers: [
        dataSourceProvider,
        redisProvider({ app: options.app }),
        PlatformLifecycle,
        { provide: PromMetrics, useFactory: () => new PromMetrics() },
      ],
      exports: [foundation, logging, DataSource, Redis, PromMetrics],
    };
  }
}
