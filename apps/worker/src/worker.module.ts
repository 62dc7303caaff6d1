import {
  type DynamicModule,
  Inject,
  Injectable,
  Module,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { type Logger, type NormConfig } from '@norm/core';
import { NORM_CONFIG, NORM_LOGGER, PlatformModule, PromMetrics, serveMetrics } from '@norm/platform';
import { SshXenHostFactory } from '@norm/xen';
import { DataSource } from 'typeorm';
import { WorkerRuntime } from './worker-runtime';

/**
 * Starts the job runner, the outbox relay and (with an SSH key) the host sync once Postgres
 * is up; stops them first on shutdown, then closes the SSH pool they were using.
 */
@Injectable()
export class WorkerLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly runtime: WorkerRuntime;
  private readonly xen?: SshXenHostFactory;
  private metricsListener: { close: () => Promise<void> } | undefined;

  constructor(
    @Inject(NORM_CONFIG) private readonly config: NormConfig,
    @Inject(NORM_LOGGER) private readonly log: Logger,
    dataSource: DataSource,
    @Inject(PromMetrics) private readonly metrics: PromMetrics,
  ) {
    // Without any SSH key the worker still runs jobs that need no host; a configured key
    // that cannot be used fails the boot, naming the setting.
    this.xen = SshXenHostFactory.fromConfigIfKeyed(config, log);
    if (!this.xen)
      log.warn('no SSH key configured: host sync and provisioning are off until one is', {
        settings: ['NORM_SSH_KEY_PATH', 'NORM_SSH_PRIVATE_KEY', `${config.stateDir}/ssh/id_ed25519`],
      });
    this.runtime = new WorkerRuntime(config, dataSource, log, this.xen, metrics);
  }

  async onApplicationBootstrap(): Promise<void> {
    // Prometheus scrapes each process; the worker has no API, so it gets a listener of its own.
    if (this.config.workerMetricsPort !== 0)
      this.metricsListener = await serveMetrics(
        this.metrics,
        { host: this.config.workerMetricsHost, port: this.config.workerMetricsPort },
        this.log,
      );
    this.runtime.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.runtime.stop();
    await this.metricsListener?.close();
    await this.xen?.close();
  }
}

@Module({})
export class WorkerModule {
  static forRoot(config: NormConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [PlatformModule.forRoot({ app: 'worker', config })],
      providers: [WorkerLifecycle],
    };
  }
}
