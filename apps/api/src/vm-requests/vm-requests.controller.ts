import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type ActingContext, type Page, VmRequestService, type VmRequestView } from '@norm/core';
import { type FastifyReply } from 'fastify';
import { IdParams } from '../hosts/hosts.dto';
import { Acting, RequirePermission } from '../identity/permission.decorator';
import { CancelVmRequestDto, CreateVmRequestDto, VmRequestListQuery } from './vm-requests.dto';

@ApiTags('vm-requests')
@Controller('v1/vm-requests')
export class VmRequestsController {
  constructor(@Inject(VmRequestService) private readonly requests: VmRequestService) {}

  /** 201 with the request, its state and approval plan; a replayed Idempotency-Key answers the original. */
  @Post()
  @RequirePermission('vm-requests:create')
  async create(
    @Acting() ctx: ActingContext,
    @Body() body: CreateVmRequestDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<VmRequestView> {
    const { heartbeatTimeout, ...input } = body;
    const { request, replayed } = await this.requests.create(
      ctx,
      { ...input, heartbeatTimeoutMs: heartbeatTimeout },
      idempotencyKey,
    );
    void reply.header('idempotent-replayed', String(replayed));
    return request;
  }

  @Get()
  @RequirePermission('vm-requests:read')
  list(@Acting() ctx: ActingContext, @Query() q: VmRequestListQuery): Promise<Page<VmRequestView>> {
    return this.requests.list(ctx, {
      ownerId: q.owner,
      state: q.state,
      label: q.label,
      cursor: q.cursor,
      limit: q.limit,
    });
  }

  @Get(':id')
  @RequirePermission('vm-requests:read')
  get(@Acting() ctx: ActingContext, @Param() params: IdParams): Promise<VmRequestView> {
    return this.requests.get(ctx, params.id);
  }

  @Post(':id/actions/cancel')
  @HttpCode(200)
  @RequirePermission('vm-requests:act')
  cancel(
    @Acting() ctx: ActingContext,
    @Param() params: IdParams,
    @Body() body: CancelVmRequestDto,
  ): Promise<VmRequestView> {
    return this.requests.cancel(ctx, params.id, body.reason);
  }
}
