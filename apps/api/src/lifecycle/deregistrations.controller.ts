import { Controller, Get, HttpCode, Inject, Param, Post, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import {
  type ActingContext,
  DEREGISTRATION_STATUSES,
  type DeregistrationRecord,
  DeregistrationService,
} from '@norm/core';
import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { IdParams } from '../hosts/hosts.dto';
import { Acting, RequirePermission } from '../identity/permission.decorator';

export class DeregistrationListQuery extends createZodDto(
  z.strictObject({
    status: z.enum(DEREGISTRATION_STATUSES).optional(),
    instance: z.uuid().optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  }),
) {}

@ApiTags('lifecycle')
@Controller('v1/deregistrations')
export class DeregistrationsController {
  constructor(@Inject(DeregistrationService) private readonly deregistrations: DeregistrationService) {}

  /** The visible queue of work per target; `?status=failed` is what needs attention. */
  @Get()
  @RequirePermission('lifecycle:read')
  list(@Acting() ctx: ActingContext, @Query() q: DeregistrationListQuery): Promise<DeregistrationRecord[]> {
    return this.deregistrations.list(ctx, { status: q.status, instanceId: q.instance, limit: q.limit });
  }

  /** Runs the target now; answers the row as it ended (done, or failed with the new error). */
  @Post(':id/actions/retry')
  @HttpCode(200)
  @RequirePermission('maintenance:write')
  retry(@Acting() ctx: ActingContext, @Param() params: IdParams): Promise<DeregistrationRecord> {
    return this.deregistrations.retry(ctx, params.id);
  }
}
