import { DomainError } from '@norm/core';
import { CommandTimeout, HostKeyMismatch, HostUnreachable } from '../errors/xen.errors';

/**
 * The transport's only construction point for typed failures, so the rest of the SSH
 * code says what went wrong and this file says which error class carries it.
 */
export type CommandPhase = 'connect' | 'queue' | 'exec' | 'sftp';

export function hostUnreachable(
  host: string,
  reason: string,
  extra: Record<string, unknown> = {},
  cause?: unknown,
): DomainError {
  return new HostUnreachable(host, reason, extra, cause);
}

export function hostKeyMismatch(host: string, expected: string, actual: string): DomainError {
  return new HostKeyMismatch(host, expected, actual);
}

export function commandTimeout(
  host: string,
  argv: readonly string[],
  timeoutMs: number,
  phase: CommandPhase,
): DomainError {
  return new CommandTimeout(host, argv, timeoutMs, { phase });
}

export function outputTooLarge(host: string, argv: readonly string[], limitBytes: number): DomainError {
  return new DomainError('RemoteCommandError', 'command output exceeded the limit', {
    host,
    argv,
    limitBytes,
  });
}

export function unsafeRemotePath(host: string, path: string): DomainError {
  return new DomainError('UnsafeArgument', 'remote path is not a plain absolute path', { host, path });
}
