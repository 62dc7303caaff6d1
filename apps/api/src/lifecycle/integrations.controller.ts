import { Body, Controller, HttpCode, Inject, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type ActingContext, AlertmanagerIntake } from '@norm/core';
import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { Acting, RequirePermission } from '../identity/permission.decorator';

/** Alertmanager's webhook (version 4); fields Norm does not read are allowed and ignored. */
export class AlertmanagerWebhookBody extends createZodDto(
  z.looseObject({
    version: z.string().optional(),
    status: z.string().optional(),
    alerts: z
      .array(
        z.looseObject({
          status: z.enum(['firing', 'resolved']),
          labels: z.record(z.string(), z.string()),
        }),
      )
      .max(10_000),
  }),
) {}

@ApiTags('lifecycle')
@Controller('v1/integrations')
export class IntegrationsController {
  constructor(@Inject(AlertmanagerIntake) private readonly alertmanager: AlertmanagerIntake) {}

  /**
   * Point Alertmanager's `webhook_configs` here with `http_config.authorization` carrying an
   * operator service token. Firing liveness alerts are missed beats, resolved ones beats.
   */
  @Post('alertmanager')
  @HttpCode(200)
  @RequirePermission('maintenance:write')
  receive(
    @Acting() ctx: ActingContext,
    @Body() body: AlertmanagerWebhookBody,
  ): Promise<{ alive: number; missed: number; unmatched: number }> {
    return this.alertmanager.receive(ctx, body);
  }
}
