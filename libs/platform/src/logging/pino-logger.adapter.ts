import { type Logger } from '@norm/core';
import { storage } from 'nestjs-pino/storage';
import { type Logger as Pino } from 'pino';

/**
 * The domain's `Logger` port on pino. Inside an HTTP request it writes through that request's
 * child logger, so domain lines carry the request id without the domain knowing HTTP exists.
 */
export class PinoLoggerAdapter implements Logger {
  constructor(
    private readonly root: Pino,
    private readonly bindings?: Record<string, unknown>,
  ) {}

  debug(msg: string, data?: Record<string, unknown>): void {
    this.current().debug(data ?? {}, msg);
  }

  info(msg: string, data?: Record<string, unknown>): void {
    this.current().info(data ?? {}, msg);
  }

  warn(msg: string, data?: Record<string, unknown>): void {
    this.current().warn(data ?? {}, msg);
  }

  error(msg: string, data?: Record<string, unknown>): void {
    this.current().error(data ?? {}, msg);
  }

  /** A logger for one component, e.g. `log.child({ component: 'outbox-relay' })`. */
  child(bindings: Record<string, unknown>): PinoLoggerAdapter {
    return new PinoLoggerAdapter(this.root.child(bindings), { ...this.bindings, ...bindings });
  }

  private current(): Pino {
    const requestLogger = storage.getStore()?.logger;
    if (requestLogger === undefined) return this.root;
    // The request logger descends from the process root, not from this child, so the
    // component bindings are reapplied (only for child adapters, and only inside requests).
    return this.bindings === undefined ? requestLogger : requestLogger.child(this.bindings);
  }
}
