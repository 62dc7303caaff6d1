import { Controller, Get, HttpCode, Inject, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import {
  type ActingContext,
  type LifecyclePreview,
  LifecycleService,
  type ReaperStatusView,
} from '@norm/core';
import { Acting, RequirePermission } from '../identity/permission.decorator';

@ApiTags('lifecycle')
@Controller('v1/lifecycle')
export class LifecycleController {
  constructor(@Inject(LifecycleService) private readonly lifecycle: LifecycleService) {}

  /** What the reaper would do right now and why, including what the brakes hold back. */
  @Get('preview')
  @RequirePermission('lifecycle:read')
  preview(@Acting() ctx: ActingContext): Promise<LifecyclePreview> {
    return this.lifecycle.preview(ctx);
  }

  /** Breaker state, rates, thresholds and the last cycle, as the leading reaper published them. */
  @Get('status')
  @RequirePermission('lifecycle:read')
  status(@Acting() ctx: ActingContext): Promise<ReaperStatusView & { leaderSeen: boolean }> {
    return this.lifecycle.status(ctx);
  }

  @Post('actions/pause')
  @HttpCode(200)
  @RequirePermission('maintenance:write')
  pause(@Acting() ctx: ActingContext): Promise<{ paused: boolean }> {
    return this.lifecycle.pause(ctx);
  }

  @Post('actions/resume')
  @HttpCode(200)
  @RequirePermission('maintenance:write')
  resume(@Acting() ctx: ActingContext): Promise<{ paused: boolean }> {
    return this.lifecycle.resume(ctx);
  }

  /** 202: the leading reaper applies it on its next cycle. */
  @Post('actions/reset-breaker')
  @HttpCode(202)
  @RequirePermission('maintenance:write')
  resetBreaker(@Acting() ctx: ActingContext): Promise<{ requested: true }> {
    return this.lifecycle.resetBreaker(ctx);
  }
}
