import { Body, Controller, HttpCode, Inject, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type ActingContext, AlertmanagerIntake, SensuIntake } from '@norm/core';
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

/** A Sensu Go event; everything but the entity name and the check's name and status is ignored. */
export class SensuEventBody extends createZodDto(
  z.looseObject({
    entity: z.looseObject({ metadata: z.looseObject({ name: z.string().min(1).max(253) }) }),
    check: z.looseObject({
      metadata: z.looseObject({ name: z.string().min(1).max(253) }),
      status: z.number().int().min(0),
    }),
  }),
) {}

@ApiTags('lifecycle')
@Controller('v1/integrations')
export class IntegrationsController {
  constructor(
    @Inject(AlertmanagerIntake) private readonly alertmanager: AlertmanagerIntake,
    @Inject(SensuIntake) private readonly sensu: SensuIntake,
  ) {}

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

  /** A Sensu Go handler posting each keepalive event: status 0 is a beat, anything else a missed one. */
  @Post('sensu')
  @HttpCode(200)
  @RequirePermission('maintenance:write')
  keepalive(
    @Acting() ctx: ActingContext,
    @Body() body: SensuEventBody,
  ): Promise<{ outcome: 'alive' | 'missed' | 'ignored' | 'unmatched' }> {
    return this.sensu.receive(ctx, body);
  }
}
