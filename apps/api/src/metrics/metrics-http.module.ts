import { Inject, Module, type OnModuleInit } from '@nestjs/common';
import { systemClock } from '@norm/core';
import { PgApprovalQueue } from '@norm/inventory';
import { PromMetrics } from '@norm/platform';
import { DataSource } from 'typeorm';
import { MetricsController } from './metrics.controller';

/** GET /metrics; the API also reports the approval backlog (read from Postgres at each scrape). */
@Module({ controllers: [MetricsController] })
export class MetricsHttpModule implements OnModuleInit {
  constructor(
    @Inject(PromMetrics) private readonly metrics: PromMetrics,
    @Inject(DataSource) private readonly ds: DataSource,
  ) {}

  onModuleInit(): void {
    const queue = new PgApprovalQueue(this.ds);
    this.metrics.addApprovalBacklog(() => queue.backlog(systemClock.now()));
  }
}
