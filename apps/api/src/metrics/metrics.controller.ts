import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { PromMetrics } from '@norm/platform';
import { RequirePermission } from '../identity/permission.decorator';

/** The text exposition format, version 0.0.4: what prom-client writes and Prometheus reads. */
const EXPOSITION = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Prometheus scrapes this with a token (`authorization.credentials_file` in its scrape
 * config): the API listener faces requesters, so it stays deny-by-default like every route.
 */
@ApiTags('metrics')
@Controller()
export class MetricsController {
  constructor(@Inject(PromMetrics) private readonly metrics: PromMetrics) {}

  @Get('metrics')
  @Header('content-type', EXPOSITION)
  @RequirePermission('metrics:read')
  async scrape(): Promise<string> {
    return (await this.metrics.exposition()).body;
  }
}
