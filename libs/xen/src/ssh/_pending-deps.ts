// TEMPORARY (not to be committed): stand-ins until libs/xen/src/{shell,errors} land.
import { DomainError } from '@norm/core';
export function quoteArgv(argv: readonly string[]): string {
  return argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
}
export function classifyRemoteFailure(f: {
  host: string;
  argv: string[];
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
}): DomainError {
  return new DomainError('RemoteCommandError', 'remote command failed', { ...f });
}
