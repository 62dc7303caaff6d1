import { Inject, Module, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { HeartbeatBuffer, HeartbeatService, type Logger, type NormConfig, systemClock } from '@norm/core';
import { PgHeartbeatStore } from '@norm/inventory';
import { NORM_CONFIG, NORM_LOGGER } from '@norm/platform';
import { DataSource } from 'typeorm';
import { HeartbeatController } from './heartbeat.controller';

/**
 * 250 ms: a beat is durable long before any deadline (minutes), and at thousands of beats
 * per second one statement carries hundreds of them.
 */
const FLUSH_INTERVAL_MS = 250;
/** Bind parameters per statement stay far below Postgres's 65535. */
const MAX_BATCH = 5000;

/** Heartbeat intake: the route, its service and the one in-process buffer per replica. */
@Module({
  controllers: [HeartbeatController],
  providers: [
    {
      provide: HeartbeatBuffer,
      inject: [NORM_CONFIG, DataSource, NORM_LOGGER],
      useFactory: (config: NormConfig, ds: DataSource, log: Logger) => {
        const timeoutS = Math.round(config.heartbeatTimeoutMs / 1000);
        return new HeartbeatBuffer(new PgHeartbeatStore(ds), systemClock, log, {
          flushIntervalMs: FLUSH_INTERVAL_MS,
          maxBatch: MAX_BATCH,
          timeouts: { cattleS: timeoutS, petS: timeoutS },
        });
      },
    },
    {
      provide: HeartbeatService,
      inject: [HeartbeatBuffer],
      useFactory: (b: HeartbeatBuffer) => new HeartbeatService(b),
    },
  ],
})
export class LifecycleHttpModule implements OnModuleInit, OnModuleDestroy {
  constructor(@Inject(HeartbeatBuffer) private readonly buffer: HeartbeatBuffer) {}

  onModuleInit(): void {
    this.buffer.start();
  }

  /** Writes what is still buffered, so a graceful shutdown loses no beat. */
  async onModuleDestroy(): Promise<void> {
    await this.buffer.stop();
  }
}
