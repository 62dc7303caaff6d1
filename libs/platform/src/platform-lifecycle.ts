import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { type Logger } from '@norm/core';
import { Redis } from 'ioredis';
import { pino, type Logger as Pino } from 'pino';
import { DataSource } from 'typeorm';
import { NORM_LOGGER, NORM_PINO } from './tokens';

/** How long shutdown waits for the last log write in flight. */
const DRAIN_TIMEOUT_MS = 1_000;

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
    await drainLogStream(this.root);
  }
}

/** The parts of pino's async destination (sonic-boom) that a last flush needs. */
interface AsyncDestination {
  flushSync?: () => void;
  /** sonic-boom's in-flight flag; not public API, so it is only read when present. */
  _writing?: boolean;
  once?: (event: 'drain', listener: () => void) => unknown;
}

/**
 * Nest re-raises the signal once the hooks return, and a process killed by a signal runs no
 * 'exit' handlers, so pino's own flush-on-exit never happens. `flushSync` writes only what is
 * queued: a line whose asynchronous write is already in flight (the last one, typically) is
 * lost if the process dies first, so wait for that write to drain (bounded), then flush.
 */
async function drainLogStream(root: Pino): Promise<void> {
  const stream = (root as unknown as Record<symbol, AsyncDestination | undefined>)[pino.symbols.streamSym];
  if (!stream) return;
  if (stream._writing === true && stream.once) {
    const once = stream.once.bind(stream);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, DRAIN_TIMEOUT_MS);
      once('drain', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  try {
    stream.flushSync?.();
  } catch {
    // A stream that is not open yet has nothing buffered to lose.
  }
}
