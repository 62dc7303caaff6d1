/**
 * Every failure the domain knows about carries a stable code and structured data.
 * Exactly one place (apps/api's exception filter) maps codes to HTTP; the domain never
 * speaks HTTP, so the same errors are meaningful in the worker and in the logs.
 */
export type ErrorCode =
  | 'ValidationFailed'
  | 'NotFound'
  | 'Conflict'
  | 'InvalidTransition'
  | 'IdempotencyConflict'
  | 'QuotaExceeded'
  | 'Unauthenticated'
  | 'Forbidden'
  | 'RateLimited'
  | 'ConfigInvalid'
  | 'PlacementImpossible'
  | 'HostUnreachable'
  | 'HostKeyMismatch'
  | 'CommandTimeout'
  | 'DomainNotFound'
  | 'DomainExists'
  | 'InsufficientMemory'
  | 'XlCommandError'
  | 'RemoteCommandError'
  | 'UnsafeArgument'
  | 'ParseError'
  | 'DependencyUnavailable';

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = code;
  }

  /** True for failures worth retrying with backoff (the far side may recover on its own). */
  get transient(): boolean {
    return (
      this.code === 'HostUnreachable' ||
      this.code === 'CommandTimeout' ||
      this.code === 'DependencyUnavailable'
    );
  }
}

export class ValidationFailed extends DomainError {
  constructor(
    message: string,
    readonly issues: ReadonlyArray<{ path: string; message: string }>,
  ) {
    super('ValidationFailed', message, { issues });
  }
}

export class NotFound extends DomainError {
  constructor(kind: string, id: string) {
    super('NotFound', `${kind} not found`, { kind, id });
  }
}

export class Conflict extends DomainError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('Conflict', message, details);
  }
}

export function isDomainError(err: unknown): err is DomainError {
  return err instanceof DomainError;
}
