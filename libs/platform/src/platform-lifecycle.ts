import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { type Logger } from '@norm/core';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { NORM_LOGGER } from './tokens';

/**
 * Closes the shared connections last: Nest runs shutdown hooks after the HTTP server has
 * stopped accepting and drained in-flight requests, so nothing still needs them.
 */
@Injectable()
export class PlatformLifecycle implements OnApplicationShutdown {
  constructor(
    private readonly dataSource: DataSource,
    private readonly redis: Redis,
    @Inject(NORM_LOGGER) private readonly log: Logger,
  ) {}

  async onApplicationShutdown(signal?: string): Promise<void> {
    // quit() on a client that is not connected waits for a reconnect that may never come.
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
    this.log.info('connections closed', { signal });
  }
}
