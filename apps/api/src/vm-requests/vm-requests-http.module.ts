import { Module } from '@nestjs/common';
import {
  type Checklist,
  checklistFromConfig,
  heartbeatOptionsOf,
  InstanceService,
  type NormConfig,
  systemClock,
  VmRequestService,
  vmRequestServiceFromConfig,
} from '@norm/core';
import { OperationRepository, PgVmRequestUnitOfWork } from '@norm/inventory';
import { NORM_CONFIG, PromMetrics } from '@norm/platform';
import { DataSource } from 'typeorm';
import { InstancesController } from '../instances/instances.controller';
import { OperationsController } from '../operations/operations.controller';
import { VmRequestsController } from './vm-requests.controller';

/** An action left open this long is stuck: longer than a forced shutdown plus a slow destroy. */
const OPERATION_DEADLINE_MS = 15 * 60_000;

/** The approval checklist, read and validated once at boot (a bad policy file stops the API). */
export const APPROVAL_CHECKLIST = Symbol('APPROVAL_CHECKLIST');

/** VM requests, instances and their operations: thin routes over the domain services. */
@Module({
  controllers: [VmRequestsController, InstancesController, OperationsController],
  providers: [
    {
      provide: PgVmRequestUnitOfWork,
      inject: [DataSource],
      useFactory: (ds: DataSource) => new PgVmRequestUnitOfWork(ds),
    },
    {
      provide: APPROVAL_CHECKLIST,
      inject: [NORM_CONFIG],
      useFactory: (config: NormConfig) => checklistFromConfig(config),
    },
    {
      provide: VmRequestService,
      inject: [NORM_CONFIG, PgVmRequestUnitOfWork, APPROVAL_CHECKLIST, PromMetrics],
      useFactory: (
        config: NormConfig,
        uow: PgVmRequestUnitOfWork,
        checklist: Checklist,
        metrics: PromMetrics,
      ) => vmRequestServiceFromConfig(config, uow, systemClock, checklist, metrics),
    },
    {
      provide: InstanceService,
      inject: [NORM_CONFIG, PgVmRequestUnitOfWork, DataSource],
      useFactory: (config: NormConfig, uow: PgVmRequestUnitOfWork, ds: DataSource) =>
        new InstanceService(uow, new OperationRepository(ds), systemClock, {
          operationDeadlineMs: OPERATION_DEADLINE_MS,
          heartbeat: heartbeatOptionsOf(config),
        }),
    },
  ],
  exports: [PgVmRequestUnitOfWork, VmRequestService, APPROVAL_CHECKLIST],
})
export class VmRequestsHttpModule {}
