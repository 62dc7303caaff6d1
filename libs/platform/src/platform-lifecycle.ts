import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { type Logger } from '@norm/core';
import { Redis } from 'ioredis';
import { pino, type Logger as Pino } from 'pino';
import { DataSource } from 'typeorm';
import { NORM_LOGGER, NORM_PINO } from './tokens';

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
    @Inject(NORM_PINO) private readonly root: Pino,
  ) {}

  async onApplicationShutdown(signal?: string): Promise<void> {
    // quit() on a client that is not connected waits for a reconnect that may never come.
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
    this.log.info('connections closed', { signal });
    // Nest re-raises the signal once the hooks return, and a process killed by a signal runs
    // no 'exit' handlers, so pino's own flush-on-exit never happens: flush the async stdout now.
    const stream = (this.root as unknown as Record<symbol, { flushSync?: () => void } | undefined>)[
      pino.symbols.streamSym
    ];
    try {
      stream?.flushSync?.();
    } catch {
      // A stream that is not open yet has nothing buffered to lose.
    }
  }
}
