import { Module } from '@nestjs/common';
import {
  AnsibleInventoryService,
  heartbeatOptionsOf,
  InstanceService,
  type NormConfig,
  systemClock,
} from '@norm/core';
import { OperationRepository, PgInventoryUnitOfWork, PgVmRequestUnitOfWork } from '@norm/inventory';
import { NORM_CONFIG } from '@norm/platform';
import { DataSource } from 'typeorm';
import { AnsibleInventoryController } from './ansible-inventory.controller';

/**
 * GET /v1/inventory/ansible. Builds its own unit-of-work instances (they are stateless wrappers
 * over the shared DataSource) instead of reaching into the hosts and VM-request modules.
 */
@Module({
  controllers: [AnsibleInventoryController],
  providers: [
    {
      provide: AnsibleInventoryService,
      inject: [NORM_CONFIG, DataSource],
      useFactory: (config: NormConfig, ds: DataSource) => {
        const requests = new PgVmRequestUnitOfWork(ds);
        // Only list() is used here, which never opens an operation, so the deadline is moot.
        const instances = new InstanceService(requests, new OperationRepository(ds), systemClock, {
          operationDeadlineMs: 15 * 60_000,
          heartbeat: heartbeatOptionsOf(config),
        });
        return new AnsibleInventoryService({ instances, inventory: new PgInventoryUnitOfWork(ds), requests });
      },
    },
  ],
})
export class AnsibleInventoryHttpModule {}
