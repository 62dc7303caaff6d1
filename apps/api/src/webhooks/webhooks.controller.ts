import { Controller, Get, HttpCode, Inject, Param, Post, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type ActingContext, type WebhookDeliveryRecord, WebhookDeliveryService } from '@norm/core';
import { IdParams } from '../hosts/hosts.dto';
import { Acting, RequirePermission } from '../identity/permission.decorator';
import { DeliveryListQuery } from './webhooks.dto';

@ApiTags('webhooks')
@Controller('v1/webhooks/deliveries')
export class WebhooksController {
  constructor(@Inject(WebhookDeliveryService) private readonly deliveries: WebhookDeliveryService) {}

  /** The delivery log, newest first; pass `nextCursor` back as `cursor` for the next page. */
  @Get()
  @RequirePermission('webhooks:read')
  list(
    @Acting() ctx: ActingContext,
    @Query() q: DeliveryListQuery,
  ): Promise<{ items: WebhookDeliveryRecord[]; nextCursor?: string }> {
    return this.deliveries.list(ctx, {
      status: q.status,
      event: q.event,
      subscription: q.subscription,
      requestId: q.request,
      cursor: q.cursor,
      limit: q.limit,
    });
  }

  /** Sends it once now; answers the row as that attempt left it. */
  @Post(':id/actions/retry')
  @HttpCode(200)
  @RequirePermission('webhooks:write')
  retry(@Acting() ctx: ActingContext, @Param() params: IdParams): Promise<WebhookDeliveryRecord> {
    return this.deliveries.retry(ctx, params.id);
  }
}
