import { Body, Controller, Get, HttpCode, Inject, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import {
  type ActingContext,
  type InstanceRecord,
  InstanceService,
  type IssuedToken,
  type OperationView,
  type Page,
} from '@norm/core';
import { IdParams } from '../hosts/hosts.dto';
import { Acting, RequirePermission } from '../identity/permission.decorator';
import { InstanceActionParams, InstanceListQuery, UpdateInstanceDto, WaitQuery } from './instances.dto';

@ApiTags('instances')
@Controller('v1/instances')
export class InstancesController {
  constructor(@Inject(InstanceService) private readonly instances: InstanceService) {}

  @Get()
  @RequirePermission('instances:read')
  list(@Acting() ctx: ActingContext, @Query() q: InstanceListQuery): Promise<Page<InstanceRecord>> {
    return this.instances.list(ctx, {
      ownerId: q.owner,
      state: q.state,
      hostId: q.host,
      label: q.label,
      cursor: q.cursor,
      limit: q.limit,
    });
  }

  @Get(':id')
  @RequirePermission('instances:read')
  get(@Acting() ctx: ActingContext, @Param() params: IdParams): Promise<InstanceRecord> {
    return this.instances.get(ctx, params.id);
  }

  /** Sets or (with null) removes the instance's own heartbeat timeout; its deadline moves at once. */
  @Patch(':id')
  @RequirePermission('instances:act')
  update(
    @Acting() ctx: ActingContext,
    @Param() params: IdParams,
    @Body() body: UpdateInstanceDto,
  ): Promise<InstanceRecord> {
    return this.instances.setHeartbeatTimeout(ctx, params.id, body.heartbeatTimeout);
  }

  /** 202 with the operation to poll; `?wait=30s` returns it once finished (or when the wait ends). */
  @Post(':id/actions/:action')
  @HttpCode(202)
  @RequirePermission('instances:act')
  async act(
    @Acting() ctx: ActingContext,
    @Param() params: InstanceActionParams,
    @Query() q: WaitQuery,
  ): Promise<OperationView> {
    const op = await this.instances.act(ctx, params.id, params.action);
    return q.wait ? this.instances.operation(ctx, op.id, q.wait) : op;
  }

  /** 201 with a fresh heartbeat token for the instance, shown this once (the guest agent's credential). */
  @Post(':id/token')
  @HttpCode(201)
  @RequirePermission('instances:act')
  issueToken(@Acting() ctx: ActingContext, @Param() params: IdParams): Promise<IssuedToken> {
    return this.instances.issueToken(ctx, params.id);
  }
}
