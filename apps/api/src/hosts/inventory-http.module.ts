import { type DynamicModule, Module } from '@nestjs/common';
import {
  CatalogueService,
  HostService,
  type Logger,
  type NormConfig,
  PlacementService,
  systemClock,
  type XenHostFactory,
} from '@norm/core';
import { PgInventoryUnitOfWork } from '@norm/inventory';
import { NORM_CONFIG, NORM_LOGGER } from '@norm/platform';
import { DataSource } from 'typeorm';
import { DriftController } from '../drift/drift.controller';
import { ImagesController } from '../images/images.controller';
import { NetworksController } from '../networks/networks.controller';
import { PlacementController } from '../placement/placement.controller';
import { HostsController } from './hosts.controller';
import { unconfiguredXenHostFactory, XEN_HOST_FACTORY } from './xen-host-factory.token';

/** Hosts, drift, placement preview, images and networks: thin routes over the inventory services. */
@Module({})
export class InventoryHttpModule {
  static forRoot(options: { xen?: XenHostFactory | undefined } = {}): DynamicModule {
    return {
      module: InventoryHttpModule,
      controllers: [
        HostsController,
        DriftController,
        PlacementController,
        ImagesController,
        NetworksController,
      ],
      providers: [
        { provide: XEN_HOST_FACTORY, useValue: options.xen ?? unconfiguredXenHostFactory },
        {
          provide: PgInventoryUnitOfWork,
          inject: [DataSource],
          useFactory: (ds: DataSource) => new PgInventoryUnitOfWork(ds),
        },
        {
          provide: HostService,
          inject: [PgInventoryUnitOfWork, XEN_HOST_FACTORY, NORM_LOGGER],
          useFactory: (uow: PgInventoryUnitOfWork, xen: XenHostFactory, log: Logger) =>
            new HostService({ uow, xen, clock: systemClock, log }),
        },
        {
          provide: CatalogueService,
          inject: [PgInventoryUnitOfWork],
          useFactory: (uow: PgInventoryUnitOfWork) => new CatalogueService(uow),
        },
        {
          provide: PlacementService,
          inject: [PgInventoryUnitOfWork, NORM_CONFIG],
          useFactory: (uow: PgInventoryUnitOfWork, config: NormConfig) =>
            new PlacementService(uow, {
              strategy: config.placementStrategy,
              dom0ReserveMb: config.dom0ReserveMb,
              vcpuOvercommitRatio: config.vcpuOvercommitRatio,
              antiAffinityMode: config.antiAffinityMode,
            }),
        },
      ],
    };
  }
}
