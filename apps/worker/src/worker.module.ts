import {
  type DynamicModule,
  Inject,
  Injectable,
  Module,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { type Logger, type NormConfig } from '@norm/core';
import { NORM_CONFIG, NORM_LOGGER, PlatformModule } from '@norm/platform';
import { DataSource } from 'typeorm';
import { WorkerRuntime } from './worker-runtime';

/** Starts the job runner and the outbox relay once Postgres is up; stops them first on shutdown. */
@Injectable()
export class WorkerLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly runtime: WorkerRuntime;

  constructor(
    @Inject(NORM_CONFIG) config: NormConfig,
    @Inject(NORM_LOGGER) log: Logger,
    dataSource: DataSource,
  ) {
    this.runtime = new WorkerRuntime(config, dataSource, log);
  }

  onApplicationBootstrap(): void {
    this.runtime.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.runtime.stop();
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
