import { DomainError } from '@norm/core';

/**
 * Allow-lists for every value that reaches a Xen host (argv, xl.cfg, LVM). A value either
 * matches a small known-safe shape or is refused with UnsafeArgument naming the field and
 * the rule; nothing is escaped into shape, because a value that needed escaping is already
 * one the host tools would read differently from us.
 */

/** The value is echoed back (shortened) so an operator can see what was refused. */
const MAX_ECHO = 128;

export function unsafeArgument(field: string, reason: string, value?: string): DomainError {
  const details: Record<string, unknown> = { field, reason };
  if (value !== undefined) details.value = value.length > MAX_ECHO ? `${value.slice(0, MAX_ECHO)}…` : value;
  return new DomainError('UnsafeArgument', `${field}: ${reason}`, details);
}

function assertString(value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string') throw unsafeArgument(field, 'must be a string');
}

/**
 * An RFC 1123 label: what Norm generates for domains (and what stays a valid hostname
 * inside the guest). Xen itself would take far more, but every other character is one
 * more way to confuse xl's argument lookup (all-digit names are read as domids).
 */
const DOMAIN_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function isDomainName(value: string): boolean {
  return DOMAIN_NAME.test(value) && !/^[0-9]+$/.test(value);
}

export function assertDomainName(value: unknown, field = 'name'): asserts value is string {
  assertString(value, field);
  if (!DOMAIN_NAME.test(value)) {
    throw unsafeArgument(
      field,
      'must be 1-63 characters of a-z, 0-9 and -, not starting or ending with -',
      value,
    );
  }
  // xl takes an all-digit argument as a domid without looking the name up (XL.md §0.2).
  if (/^[0-9]+$/.test(value))
    throw unsafeArgument(field, 'must not be all digits (xl reads it as a domid)', value);
}

/** lvm(8) VALID NAMES; NAME_LEN is 128 including the NUL. */
const LVM_NAME = /^[A-Za-z0-9+_.-]{1,127}$/;
/** Suffixes LVM uses for the hidden sub-volumes of raid, mirror, thin, cache and vdo volumes. */
const LVM_RESERVED_SUBSTRINGS = [
  '_cdata',
  '_cmeta',
  '_corig',
  '_cpool',
  '_cvol',
  '_iorig',
  '_mimage',
  '_mlog',
  '_pmspare',
  '_rimage',
  '_rmeta',
  '_tdata',
  '_tmeta',
  '_vdata',
  '_vorig',
  '_wcorig',
] as const;

function assertLvmCommon(value: unknown, field: string): asserts value is string {
  assertString(value, field);
  if (!LVM_NAME.test(value)) {
    throw unsafeArgument(field, 'must be 1-127 characters of A-Z, a-z, 0-9, +, _, . and -', value);
  }
  if (value.startsWith('-')) throw unsafeArgument(field, 'must not start with -', value);
  if (value === '.' || value === '..') throw unsafeArgument(field, 'must not be . or ..', value);
}

export function assertVgName(value: unknown, field = 'vg'): asserts value is string {
  assertLvmCommon(value, field);
}

export function assertLvName(value: unknown, field = 'lv'): asserts value is string {
  assertLvmCommon(value, field);
  // lvm2 refuses names *starting* with these (apply_lvname_restrictions), not only equal to them.
  if (value.startsWith('snapshot') || value.startsWith('pvmove')) {
    throw unsafeArgument(field, 'must not start with "snapshot" or "pvmove" (reserved by LVM)', value);
  }
  const reserved = LVM_RESERVED_SUBSTRINGS.find((s) => value.includes(s));
  if (reserved !== undefined) {
    throw unsafeArgument(field, `must not contain "${reserved}" (reserved by LVM)`, value);
  }
}

/** Segments of the characters LVM, Linux and xl all take literally; PATH_MAX is 4096. */
const PATH_SEGMENT = /^[A-Za-z0-9_.+-]+$/;
const MAX_PATH = 4095;

export function assertAbsolutePath(value: unknown, field = 'path'): asserts value is string {
  assertString(value, field);
  if (value.length > MAX_PATH) throw unsafeArgument(field, `must be at most ${MAX_PATH} characters`);
  if (!value.startsWith('/')) throw unsafeArgument(field, 'must be an absolute path', value);
  const segments = value.slice(1).split('/');
  for (const segment of segments) {
    if (segment === '') throw unsafeArgument(field, 'must not contain empty segments or end with /', value);
    if (segment === '.' || segment === '..') {
      throw unsafeArgument(field, 'must not contain . or .. segments', value);
    }
    if (!PATH_SEGMENT.test(segment)) {
      throw unsafeArgument(field, 'segments may contain only A-Z, a-z, 0-9, _, ., + and -', value);
    }
  }
}

const MAC = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;

/**
 * Any unicast MAC (Xen OUI, a site OUI, or locally administered). Multicast and all-zero
 * addresses are refused: Linux will not give them to a NIC, so the guest would lose its vif.
 */
export function assertMac(value: unknown, field = 'mac'): asserts value is string {
  assertString(value, field);
  if (!MAC.test(value)) throw unsafeArgument(field, 'must be six hex octets separated by :', value);
  const first = parseInt(value.slice(0, 2), 16);
  if ((first & 1) === 1) throw unsafeArgument(field, 'must be a unicast address (multicast bit set)', value);
  if (/^(00:){5}00$/.test(value)) throw unsafeArgument(field, 'must not be all zeros', value);
}

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
// No leading zeros: inet_aton reads `010` as octal, so `10.0.0.010` means a different address.
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

export function assertIpv4(value: unknown, field = 'ip'): asserts value is string {
  assertString(value, field);
  if (!IPV4.test(value)) {
    throw unsafeArgument(field, 'must be a dotted-quad IPv4 address without leading zeros', value);
  }
}

/** IFNAMSIZ is 16 including the NUL; `/`, `:` and whitespace are refused by the kernel or by vif-bridge. */
const BRIDGE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

export function assertBridgeName(value: unknown, field = 'bridge'): asserts value is string {
  assertString(value, field);
  if (!BRIDGE.test(value)) {
    throw unsafeArgument(
      field,
      'must be 1-15 characters of A-Z, a-z, 0-9, _, . and -, starting with a letter or digit',
      value,
    );
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function assertUuid(value: unknown, field = 'uuid'): asserts value is string {
  assertString(value, field);
  if (!UUID.test(value))
    throw unsafeArgument(field, 'must be a canonical UUID (8-4-4-4-12 hex digits)', value);
}

export function assertPositiveInt(
  value: unknown,
  field: string,
  max = Number.MAX_SAFE_INTEGER,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw unsafeArgument(field, `must be an integer from 1 to ${max}`, String(value));
  }
}
