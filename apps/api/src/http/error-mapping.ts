import { type ErrorCode } from '@norm/core';

export interface ErrorMapping {
  status: number;
  /**
   * Whether `details` go back to the caller. Details of 4xx errors describe the caller's own
   * request; details of host and infrastructure failures (host, argv, stderr) and the reason
   * a credential was refused are for operators, so they are logged instead.
   */
  exposeDetails: boolean;
}

/**
 * THE mapping from domain error codes to HTTP, and the only one. The mapped type makes it
 * exhaustive: adding a code to `ErrorCode` without a row here fails the typecheck.
 *
 * Judgement calls, and why:
 * - ValidationFailed, UnsafeArgument, ParseError → 400: the caller sent something we will not
 *   accept as written (422 would split hairs between "malformed" and "invalid" that no client
 *   acts on). Parsers of *host* output should raise XlCommandError/RemoteCommandError (502).
 * - QuotaExceeded → 422, not 429: 429 tells generic clients and proxies to retry after a pause,
 *   but a quota does not heal with time; the request must change (or the quota must).
 * - PlacementImpossible, InsufficientMemory → 409: the request is valid but conflicts with the
 *   fleet's current state; the same request can succeed once capacity frees up.
 * - HostUnreachable, CommandTimeout, DependencyUnavailable → 503: transient by definition
 *   (`DomainError.transient`), so the caller should retry.
 * - HostKeyMismatch, XlCommandError, RemoteCommandError → 502: an upstream (a Xen host)
 *   answered wrongly; retrying will not help until an operator looks.
 * - ConfigInvalid → 500: our fault, not the caller's.
 */
export const ERROR_HTTP: { readonly [C in ErrorCode]: ErrorMapping } = {
  ValidationFailed: { status: 400, exposeDetails: true },
  UnsafeArgument: { status: 400, exposeDetails: true },
  ParseError: { status: 400, exposeDetails: true },
  Unauthenticated: { status: 401, exposeDetails: false },
  Forbidden: { status: 403, exposeDetails: true },
  NotFound: { status: 404, exposeDetails: true },
  DomainNotFound: { status: 404, exposeDetails: true },
  Conflict: { status: 409, exposeDetails: true },
  InvalidTransition: { status: 409, exposeDetails: true },
  IdempotencyConflict: { status: 409, exposeDetails: true },
  DomainExists: { status: 409, exposeDetails: true },
  PlacementImpossible: { status: 409, exposeDetails: true },
  InsufficientMemory: { status: 409, exposeDetails: true },
  QuotaExceeded: { status: 422, exposeDetails: true },
  RateLimited: { status: 429, exposeDetails: true },
  ConfigInvalid: { status: 500, exposeDetails: false },
  HostKeyMismatch: { status: 502, exposeDetails: false },
  XlCommandError: { status: 502, exposeDetails: false },
  RemoteCommandError: { status: 502, exposeDetails: false },
  HostUnreachable: { status: 503, exposeDetails: false },
  CommandTimeout: { status: 503, exposeDetails: false },
  // Readiness reports per-dependency status through this code; its details are meant to be read.
  DependencyUnavailable: { status: 503, exposeDetails: true },
};

/** Codes that exist only at the HTTP edge (framework-level failures with no domain meaning). */
export type HttpOnlyCode =
  | 'BadRequest'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'PayloadTooLarge'
  | 'UnsupportedMediaType'
  | 'HttpError'
  | 'InternalError';

export type ApiErrorCode = ErrorCode | HttpOnlyCode;

/** Codes for Nest/Fastify HTTP exceptions, by status; unlisted 4xx are `HttpError`, 5xx `InternalError`. */
const HTTP_STATUS_CODES: Readonly<Record<number, ApiErrorCode>> = {
  400: 'BadRequest',
  401: 'Unauthenticated',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  406: 'NotAcceptable',
  409: 'Conflict',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
  429: 'RateLimited',
  503: 'DependencyUnavailable',
};

export function codeForHttpStatus(status: number): ApiErrorCode {
  return HTTP_STATUS_CODES[status] ?? (status >= 500 ? 'InternalError' : 'HttpError');
}
