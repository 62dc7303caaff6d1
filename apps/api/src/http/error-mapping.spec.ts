import { type ErrorCode } from '@norm/core';
import { describe, expect, it } from 'vitest';
import { codeForHttpStatus, ERROR_HTTP } from './error-mapping';

describe('ERROR_HTTP', () => {
  it('maps every domain code to a 4xx or 5xx status', () => {
    for (const [code, { status }] of Object.entries(ERROR_HTTP)) {
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
    }
  });

  it.each<[ErrorCode, number]>([
    ['ValidationFailed', 400],
    ['UnsafeArgument', 400],
    ['ParseError', 400],
    ['Unauthenticated', 401],
    ['Forbidden', 403],
    ['NotFound', 404],
    ['DomainNotFound', 404],
    ['Conflict', 409],
    ['InvalidTransition', 409],
    ['IdempotencyConflict', 409],
    ['DomainExists', 409],
    ['PlacementImpossible', 409],
    ['InsufficientMemory', 409],
    ['QuotaExceeded', 422],
    ['RateLimited', 429],
    ['ConfigInvalid', 500],
    ['HostKeyMismatch', 502],
    ['XlCommandError', 502],
    ['RemoteCommandError', 502],
    ['HostUnreachable', 503],
    ['CommandTimeout', 503],
    ['DependencyUnavailable', 503],
  ])('%s → %i', (code, status) => {
    expect(ERROR_HTTP[code].status).toBe(status);
  });

  it('never returns operator-only details of host failures or refused credentials', () => {
    for (const code of [
      'Unauthenticated',
      'HostKeyMismatch',
      'XlCommandError',
      'RemoteCommandError',
      'HostUnreachable',
      'CommandTimeout',
      'ConfigInvalid',
    ] as const) {
      expect(ERROR_HTTP[code].exposeDetails, code).toBe(false);
    }
  });
});

describe('codeForHttpStatus', () => {
  it('names framework statuses and falls back by class', () => {
    expect(codeForHttpStatus(404)).toBe('NotFound');
    expect(codeForHttpStatus(413)).toBe('PayloadTooLarge');
    expect(codeForHttpStatus(415)).toBe('UnsupportedMediaType');
    expect(codeForHttpStatus(418)).toBe('HttpError');
    expect(codeForHttpStatus(500)).toBe('InternalError');
    expect(codeForHttpStatus(504)).toBe('InternalError');
  });
});
