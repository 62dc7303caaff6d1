import { Controller, Get, Inject, Param, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type ActingContext, InstanceService, type OperationView } from '@norm/core';
import { IdParams } from '../hosts/hosts.dto';
import { Acting, RequirePermission } from '../identity/permission.decorator';
import { WaitQuery } from '../instances/instances.dto';

@ApiTags('operations')
@Controller('v1/operations')
export class OperationsController {
  constructor(@Inject(InstanceService) private readonly instances: InstanceService) {}

  /** Status, steps and error; `?wait=30s` holds the answer until the operation finishes. */
  @Get(':id')
  @RequirePermission('instances:read')
  get(
    @Acting() ctx: ActingContext,
    @Param() params: IdParams,
    @Query() q: WaitQuery,
  ): Promise<OperationView> {
    return this.instances.operation(ctx, params.id, q.wait ?? 0);
  }
}
