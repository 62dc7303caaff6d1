import { type LoggerService } from '@nestjs/common';
import { type Logger as Pino } from 'pino';

/** Nest passes the context (a class name) as the last string argument. */
function split(params: unknown[]): { context?: string; rest: unknown[] } {
  const last = params[params.length - 1];
  return typeof last === 'string' ? { context: last, rest: params.slice(0, -1) } : { rest: params };
}

/**
 * Nest's LoggerService on pino, for the lines Nest writes while the application is being
 * built (before nestjs-pino's `Logger` can be resolved from the container), including the
 * error of a failed boot. Without it those lines would be Nest's coloured console text in a
 * stream that is otherwise JSON.
 */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly pino: Pino) {}

  log(message: unknown, ...params: unknown[]): void {
    const { context } = split(params);
    this.pino.info({ context }, String(message));
  }

  error(message: unknown, ...params: unknown[]): void {
    const { context, rest } = split(params);
    const stack = rest.find((p): p is string => typeof p === 'string');
    if (message instanceof Error) this.pino.error({ context, err: message }, message.message);
    else this.pino.error({ context, stack }, String(message));
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.pino.warn({ context: split(params).context }, String(message));
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.pino.debug({ context: split(params).context }, String(message));
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.pino.trace({ context: split(params).context }, String(message));
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.pino.fatal({ context: split(params).context }, String(message));
  }
}
