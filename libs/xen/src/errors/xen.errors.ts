import { DomainError, type ErrorCode } from '@norm/core';

/**
 * Typed failures of the Xen boundary. Messages are fixed sentences (safe to log and to show);
 * everything host-specific (argv, exit code, stderr) travels in `details`, which the API logs
 * for operators instead of returning it.
 */

/** What the transport knows about a finished (or killed) remote command. */
export interface RemoteCommandOutcome {
  host: string;
  argv: readonly string[];
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Volume-level failures have no ErrorCode of their own (see VolumeFailureKind), so they say which they are here. */
export type RemoteFailureKind =
  | 'DomainNotFound'
  | 'DomainExists'
  | 'InsufficientMemory'
  | 'XlCommandError'
  | 'VolumeNotFound'
  | 'VolumeExists'
  | 'InsufficientStorage'
  | 'RemoteCommandError';

/**
 * Host output can be large (xl create prints the whole libxl log on failure); details are
 * logged on every failure, so they keep the start, where xl and LVM put the cause.
 */
export const MAX_DETAIL_OUTPUT_CHARS = 8192;

export function truncateOutput(text: string, max = MAX_DETAIL_OUTPUT_CHARS): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… [${text.length - max} more characters]`;
}

export class RemoteCommandFailed extends DomainError {
  constructor(
    readonly outcome: RemoteCommandOutcome,
    readonly kind: RemoteFailureKind = 'RemoteCommandError',
    code: ErrorCode = 'RemoteCommandError',
    message = 'remote command failed',
    extra: Record<string, unknown> = {},
  ) {
    super(code, message, {
      kind,
      host: outcome.host,
      argv: [...outcome.argv],
      exitCode: outcome.exitCode,
      ...(outcome.signal !== undefined ? { signal: outcome.signal } : {}),
      stderr: truncateOutput(outcome.stderr),
      ...(outcome.stdout !== '' ? { stdout: truncateOutput(outcome.stdout) } : {}),
      durationMs: outcome.durationMs,
      ...extra,
    });
  }
}

export class DomainNotFound extends RemoteCommandFailed {
  constructor(
    outcome: RemoteCommandOutcome,
    readonly domain?: string,
  ) {
    super(
      outcome,
      'DomainNotFound',
      'DomainNotFound',
      'domain does not exist on the host',
      domainDetail(domain),
    );
  }
}

export class DomainExists extends RemoteCommandFailed {
  constructor(
    outcome: RemoteCommandOutcome,
    readonly domain?: string,
  ) {
    super(
      outcome,
      'DomainExists',
      'DomainExists',
      'a domain with this name already exists',
      domainDetail(domain),
    );
  }
}

export class InsufficientMemory extends RemoteCommandFailed {
  constructor(outcome: RemoteCommandOutcome) {
    super(
      outcome,
      'InsufficientMemory',
      'InsufficientMemory',
      'the host has not enough free memory for the domain',
    );
  }
}

export class XlCommandError extends RemoteCommandFailed {
  constructor(outcome: RemoteCommandOutcome) {
    super(outcome, 'XlCommandError', 'XlCommandError', 'xl command failed');
  }
}

/**
 * The LVM failures use code RemoteCommandError: ErrorCode is an exhaustive union mapped to
 * HTTP in apps/api, so a new code would need a row there. Callers tell them apart with
 * `instanceof` or `details.kind`.
 */
export class VolumeNotFound extends RemoteCommandFailed {
  constructor(
    outcome: RemoteCommandOutcome,
    readonly volume?: string,
  ) {
    super(
      outcome,
      'VolumeNotFound',
      'RemoteCommandError',
      'logical volume does not exist',
      volumeDetail(volume),
    );
  }
}

export class VolumeExists extends RemoteCommandFailed {
  constructor(
    outcome: RemoteCommandOutcome,
    readonly volume?: string,
  ) {
    super(
      outcome,
      'VolumeExists',
      'RemoteCommandError',
      'logical volume already exists',
      volumeDetail(volume),
    );
  }
}

export class InsufficientStorage extends RemoteCommandFailed {
  constructor(
    outcome: RemoteCommandOutcome,
    readonly volumeGroup?: string,
  ) {
    super(
      outcome,
      'InsufficientStorage',
      'RemoteCommandError',
      'volume group has not enough free space',
      volumeGroup !== undefined ? { volumeGroup } : {},
    );
  }
}

export class HostUnreachable extends DomainError {
  constructor(host: string, reason: string, extra: Record<string, unknown> = {}, cause?: unknown) {
    super('HostUnreachable', 'host unreachable', { host, reason, ...extra }, { cause });
  }
}

export class HostKeyMismatch extends DomainError {
  constructor(host: string, expected: string, actual: string) {
    super('HostKeyMismatch', 'host key does not match the pinned fingerprint', { host, expected, actual });
  }
}

export class CommandTimeout extends DomainError {
  constructor(host: string, argv: readonly string[], timeoutMs: number, extra: Record<string, unknown> = {}) {
    super('CommandTimeout', 'command timed out', { host, argv: [...argv], timeoutMs, ...extra });
  }
}

function domainDetail(domain: string | undefined): Record<string, unknown> {
  return domain !== undefined ? { domain } : {};
}

function volumeDetail(volume: string | undefined): Record<string, unknown> {
  return volume !== undefined ? { volume } : {};
}

/** `sudo -n xl …` is still an xl failure: look past the privilege wrapper for the tool. */
function toolOf(argv: readonly string[]): { tool: string | undefined; sub: string | undefined } {
  let i = 0;
  if (argv[0] === 'sudo') {
    i = 1;
    while (i < argv.length && (argv[i] ?? '').startsWith('-')) {
      const opt = argv[i];
      i++;
      if (opt === '--') break;
    }
  }
  const tool = argv[i]?.split('/').pop();
  return { tool, sub: argv[i + 1] };
}

// Texts from XL.md §0.2, §1.5, §3.1, §3.3, §3.5; each anchored on a fragment that stays the
// same across the versions listed there (the libxl prefix and FILE:LINE vary by build).
const XL_INVALID_IDENTIFIER = /^(.*?) is an invalid domain identifier\b/m;
const XL_DOES_NOT_EXIST = /^Error: Domain '([^'\n]*)' does not exist\./m;
const XL_DOMID_LOOKUP = /^Can't get domid of domain name '([^'\n]*)', maybe this domain does not exist\./m;
const XL_DOMNAME_LOOKUP =
  /^Can't get domain name of domain id '([^'\n]*)', maybe this domain does not exist\./m;
// 4.1–4.8 lower-case `domain with name`, 4.9+ `Domain with name`.
const XL_NAME_IN_USE = /[dD]omain with name "([^"\n]*)" already exists/;
const XL_OUT_OF_MEMORY =
  /can't allocate low memory for domain: Out of memory|failed to free memory for the domain/;
// 4.1–4.5 `xl list <numeric id>` (XL.md §1.5); -6 is ERROR_INVAL, so only trusted for `list`.
const XL_LIST_INFO_FAILED = /^libxl_domain_info failed \(code -6\)\./m;
// Spelling as in the libxl source.
const XL_NONEXISTENT = /Non-existant domain/;

const LVM_LV_MISSING = /Failed to find logical volume "([^"\n]*)"/;
const LVM_LV_EXISTS = /Logical volume "([^"\n]*)" already exists in volume group "([^"\n]*)"/i;
const LVM_NO_SPACE = /Volume group "([^"\n]*)" has insufficient free space \(\d+ extents\): \d+ required\./;

/**
 * Turns a failed remote command into the most specific error the domain can act on
 * (DomainNotFound makes a destroy idempotent, DomainExists a create, and so on). Unknown
 * failures keep everything for the operator as XlCommandError or RemoteCommandError.
 */
export function classifyRemoteFailure(r: RemoteCommandOutcome): DomainError {
  const { tool, sub } = toolOf(r.argv);
  const text = `${r.stderr}\n${r.stdout}`;
  if (tool === 'xl') {
    // Memory first: a failed build also prints the destroy trio (`Non-existant domain`).
    if (XL_OUT_OF_MEMORY.test(text)) return new InsufficientMemory(r);
    const inUse = XL_NAME_IN_USE.exec(text);
    if (inUse) return new DomainExists(r, inUse[1]);
    const missing =
      XL_INVALID_IDENTIFIER.exec(text) ??
      XL_DOES_NOT_EXIST.exec(text) ??
      XL_DOMID_LOOKUP.exec(text) ??
      XL_DOMNAME_LOOKUP.exec(text);
    if (missing) return new DomainNotFound(r, missing[1]?.trim());
    if (sub === 'list' && XL_LIST_INFO_FAILED.test(text)) return new DomainNotFound(r, r.argv.at(-1));
    if (sub === 'destroy' && XL_NONEXISTENT.test(text)) return new DomainNotFound(r, r.argv.at(-1));
    return new XlCommandError(r);
  }
  const lvMissing = LVM_LV_MISSING.exec(text);
  if (lvMissing) return new VolumeNotFound(r, lvMissing[1]);
  const lvExists = LVM_LV_EXISTS.exec(text);
  if (lvExists) return new VolumeExists(r, `${lvExists[2] ?? ''}/${lvExists[1] ?? ''}`);
  const noSpace = LVM_NO_SPACE.exec(text);
  if (noSpace) return new InsufficientStorage(r, noSpace[1]);
  return new RemoteCommandFailed(r);
}
