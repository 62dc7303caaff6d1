import { type Logger } from '@norm/core';
import { type Logger as Pino } from 'pino';

/**
 * The domain's `Logger` port on pino. A line logged on behalf of an HTTP request names its
 * `requestId` in the data, taken from the `ActingContext` the domain was given (see
 * registerRequestLogging for why no async context carries it).
 */
export class PinoLoggerAdapter implements Logger {
  constructor(private readonly root: Pino) {}

  debug(msg: string, data?: Record<string, unknown>): void {
    this.root.debug(data ?? {}, msg);
  }

  info(msg: string, data?: Record<string, unknown>): void {
    this.root.info(data ?? {}, msg);
  }

  warn(msg: string, data?: Record<string, unknown>): void {
    this.root.warn(data ?? {}, msg);
  }

  error(msg: string, data?: Record<string, unknown>): void {
    this.root.error(data ?? {}, msg);
  }

  /** A logger for one component, e.g. `log.child({ component: 'outbox-relay' })`. */
  child(bindings: Record<string, unknown>): PinoLoggerAdapter {
    return new PinoLoggerAdapter(this.root.child(bindings));
  }
}
