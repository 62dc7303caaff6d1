import { Module } from '@nestjs/common';
import { ApprovalService, type Checklist, systemClock, VmRequestService } from '@norm/core';
import { PgApprovalQueue, PgVmRequestUnitOfWork } from '@norm/inventory';
import { PromMetrics } from '@norm/platform';
import { DataSource } from 'typeorm';
import { APPROVAL_CHECKLIST, VmRequestsHttpModule } from '../vm-requests/vm-requests-http.module';
import { ApprovalsController } from './approvals.controller';

/** The checklist, deciding and the inbox, over the same request service the requests routes use. */
@Module({
  imports: [VmRequestsHttpModule],
  controllers: [ApprovalsController],
  providers: [
    {
      provide: ApprovalService,
      inject: [PgVmRequestUnitOfWork, VmRequestService, APPROVAL_CHECKLIST, DataSource, PromMetrics],
      useFactory: (
        uow: PgVmRequestUnitOfWork,
        requests: VmRequestService,
        checklist: Checklist,
        ds: DataSource,
        metrics: PromMetrics,
      ) => new ApprovalService(uow, requests, checklist, new PgApprovalQueue(ds), systemClock, metrics),
    },
  ],
})
export class ApprovalsHttpModule {}
