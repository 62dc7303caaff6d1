import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { type NormConfig, type XenHostFactory } from '@norm/core';
import { PlatformModule } from '@norm/platform';
import { type DestinationStream } from 'pino';
import { HealthModule } from './health/health.module';
import { InventoryHttpModule } from './hosts/inventory-http.module';
import { AnsibleInventoryHttpModule } from './inventory-ansible/ansible-inventory-http.module';
import { ApprovalsHttpModule } from './approvals/approvals-http.module';
import { ApiHttpModule } from './http/http.module';
import { IdentityModule } from './identity/identity.module';
import { LifecycleHttpModule } from './lifecycle/lifecycle-http.module';
import { MetricsHttpModule } from './metrics/metrics-http.module';
import { VmRequestsHttpModule } from './vm-requests/vm-requests-http.module';
import { WebhooksHttpModule } from './webhooks/webhooks-http.module';

export interface AppModuleOptions {
  config?: NormConfig;
  logDestination?: DestinationStream;
  /** Modules mounted beside the product's, e.g. a benchmark's hello route. */
  extraModules?: ReadonlyArray<Type | DynamicModule>;
  /** The Xen transport host registration probes through; without it registration answers 503. */
  xen?: XenHostFactory;
}

@Module({})
export class AppModule {
  static forRoot(options: AppModuleOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        PlatformModule.forRoot({
          app: 'api',
          config: options.config,
          logDestination: options.logDestination,
        }),
        ApiHttpModule,
        HealthModule,
        // Registers the global deny-by-default guard: every route needs @RequirePermission or @Public().
        IdentityModule,
        InventoryHttpModule.forRoot({ xen: options.xen }),
        VmRequestsHttpModule,
        ApprovalsHttpModule,
        WebhooksHttpModule,
        MetricsHttpModule,
        AnsibleInventoryHttpModule,
        LifecycleHttpModule.forRoot({ xen: options.xen }),
        ...(options.extraModules ?? []),
      ],
    };
  }
}
