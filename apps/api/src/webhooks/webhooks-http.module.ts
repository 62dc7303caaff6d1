import { Module } from '@nestjs/common';
import {
  type Checklist,
  fetchWebhookPoster,
  type Logger,
  type NormConfig,
  systemClock,
  WebhookDeliveryService,
  webhookDeliveryOptions,
} from '@norm/core';
import { PgAuditLog, PgWebhookDeliveryStore } from '@norm/inventory';
import { NORM_CONFIG, NORM_LOGGER, PromMetrics } from '@norm/platform';
import { DataSource } from 'typeorm';
import { APPROVAL_CHECKLIST, VmRequestsHttpModule } from '../vm-requests/vm-requests-http.module';
import { WebhooksController } from './webhooks.controller';

/** The notification delivery log and an operator's resend; the workers do the sending. */
@Module({
  imports: [VmRequestsHttpModule],
  controllers: [WebhooksController],
  providers: [
    {
      provide: WebhookDeliveryService,
      inject: [NORM_CONFIG, APPROVAL_CHECKLIST, DataSource, NORM_LOGGER, PromMetrics],
      useFactory: (
        config: NormConfig,
        checklist: Checklist,
        ds: DataSource,
        log: Logger,
        metrics: PromMetrics,
      ) =>
        new WebhookDeliveryService(
          {
            store: new PgWebhookDeliveryStore(ds),
            subscriptions: checklist.subscriptions,
            http: fetchWebhookPoster,
            clock: systemClock,
            log,
            audit: (event) => PgAuditLog.appendAlone(ds, event),
            metrics,
          },
          webhookDeliveryOptions(config),
        ),
    },
  ],
})
export class WebhooksHttpModule {}
