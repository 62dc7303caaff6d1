import { Body, Controller, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type ActingContext, HeartbeatService } from '@norm/core';
import { IdParams } from '../hosts/hosts.dto';
import { Acting, RequirePermission } from '../identity/permission.decorator';
import { HeartbeatBody } from './heartbeat.dto';

@ApiTags('instances')
@Controller('v1/instances')
export class HeartbeatController {
  constructor(@Inject(HeartbeatService) private readonly heartbeats: HeartbeatService) {}

  /** 202: the beat is buffered and written within the flush interval (well under any timeout). */
  @Post(':id/heartbeat')
  @HttpCode(202)
  @RequirePermission('instances:heartbeat')
  beat(
    @Acting() ctx: ActingContext,
    @Param() params: IdParams,
    @Body() body: HeartbeatBody,
  ): { accepted: true } {
    return this.heartbeats.beat(ctx, params.id, {
      seq: body.seq,
      uptimeS: body.uptime_s,
      agentVersion: body.agent_version,
    });
  }
}
