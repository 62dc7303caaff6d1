import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import {
  type ActingContext,
  ApprovalService,
  type InboxEntry,
  type PolicyView,
  type PreviewStep,
  type VmRequestView,
} from '@norm/core';
import { IdParams } from '../hosts/hosts.dto';
import { Acting, Public, RequirePermission } from '../identity/permission.decorator';
import { ApprovalCallbackDto, CallbackParams, DecideApprovalDto, PolicyPreviewDto } from './approvals.dto';

@ApiTags('approvals')
@Controller('v1')
export class ApprovalsController {
  constructor(@Inject(ApprovalService) private readonly approvals: ApprovalService) {}

  /** The active checklist: steps in order with their conditions, groups and timers. */
  @Get('approval-policy')
  @RequirePermission('approvals:read')
  policy(@Acting() ctx: ActingContext): PolicyView {
    return this.approvals.policy(ctx);
  }

  /** Which steps a hypothetical request would meet and what the automatic ones would decide now. */
  @Post('approval-policy/preview')
  @HttpCode(200)
  @RequirePermission('approvals:read')
  preview(
    @Acting() ctx: ActingContext,
    @Body() body: PolicyPreviewDto,
  ): Promise<{ steps: PreviewStep[]; outcome: string }> {
    return this.approvals.preview(ctx, body);
  }

  /** What waits on the caller's groups, oldest first. */
  @Get('approvals/inbox')
  @RequirePermission('approvals:read')
  inbox(@Acting() ctx: ActingContext): Promise<InboxEntry[]> {
    return this.approvals.inbox(ctx);
  }

  /** Approve or reject one waiting step (a comment is required to reject). */
  @Post('vm-requests/:id/approvals')
  @HttpCode(200)
  @RequirePermission('approvals:decide')
  decide(
    @Acting() ctx: ActingContext,
    @Param() params: IdParams,
    @Body() body: DecideApprovalDto,
  ): Promise<VmRequestView> {
    return this.approvals.decide(ctx, params.id, body);
  }

  /** A webhook step's late answer; authenticated by the step secret's HMAC, not a token. */
  @Post('approvals/callbacks/:requestId/:step')
  @HttpCode(200)
  @Public()
  callback(
    @Param() params: CallbackParams,
    @Body() body: ApprovalCallbackDto,
    @Headers('x-norm-signature') signature: string | undefined,
  ): Promise<VmRequestView> {
    return this.approvals.callback(params.requestId, params.step, body, signature);
  }
}
