import { Module } from '@nestjs/common';
import {
  InstanceService,
  type NormConfig,
  systemClock,
  VmRequestService,
  vmRequestServiceFromConfig,
} from '@norm/core';
import { OperationRepository, PgVmRequestUnitOfWork } from '@norm/inventory';
import { NORM_CONFIG } from '@norm/platform';
import { DataSource } from 'typeorm';
import { InstancesController } from '../instances/instances.controller';
import { OperationsController } from '../operations/operations.controller';
import { VmRequestsController } from './vm-requests.controller';

/** An action left open this long is stuck: longer than a forced shutdown plus a slow destroy. */
const OPERATION_DEADLINE_MS = 15 * 60_000;

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
      provide: VmRequestService,
      inject: [NORM_CONFIG, PgVmRequestUnitOfWork],
      useFactory: (config: NormConfig, uow: PgVmRequestUnitOfWork) => vmRequestServiceFromConfig(config, uow),
    },
    {
      provide: InstanceService,
      inject: [PgVmRequestUnitOfWork, DataSource],
      useFactory: (uow: PgVmRequestUnitOfWork, ds: DataSource) =>
        new InstanceService(uow, new OperationRepository(ds), systemClock, {
          operationDeadlineMs: OPERATION_DEADLINE_MS,
        }),
    },
  ],
})
export class VmRequestsHttpModule {}
