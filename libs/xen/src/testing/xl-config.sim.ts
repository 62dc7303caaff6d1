import { createHash } from 'node:crypto';
import { parseXlCfg } from '../xl-cfg/xl-cfg.parser';
import { type LifecycleAction, type SimDisk, type SimNic } from './xen-sim.state';

/**
 * Turns an xl.cfg text into what `xl create` builds, using Norm's own xl.cfg parser (one
 * parser in the codebase, so the simulator accepts exactly what Norm renders). xl's semantic
 * checks that Norm can trip over (name, type, actions, disk and vif specs) are reproduced
 * with xl's messages; see XL.md section 4.
 */
export type CfgValue = string | CfgValue[];

/** Normalises whatever shape parseXlCfg returns (Map or record; strings, numbers, lists). */
export function normalizeCfg(parsed: unknown): Map<string, CfgValue> {
  const out = new Map<string, CfgValue>();
  const entries: Array<[string, unknown]> =
    parsed instanceof Map
      ? [...(parsed as Map<unknown, unknown>)].map(([k, v]) => [String(k), v])
      : Object.entries(parsed as Record<string, unknown>);
  for (const [key, value] of entries) {
    const v = normalizeValue(value);
    if (v !== undefined) out.set(key, v);
  }
  return out;
}

function normalizeValue(value: unknown): CfgValue | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (Array.isArray(value)) return value.map(normalizeValue).filter((v): v is CfgValue => v !== undefined);
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    for (const key of ['items', 'values', 'value', 'text', 'raw']) {
      if (key in o) return normalizeValue(o[key]);
    }
  }
  return undefined;
}

export class XlCfgError extends Error {
  constructor(
    readonly lines: string[],
    readonly exitCode: number,
  ) {
    super(lines.join('\n'));
  }
}

export interface ParsedDomainConfig {
  name: string;
  uuid?: string;
  type: 'pv' | 'pvh' | 'hvm';
  memoryMb: number;
  maxMemoryMb: number;
  vcpus: number;
  maxVcpus: number;
  kernel?: string;
  ramdisk?: string;
  cmdline?: string;
  bootloader?: string;
  disks: SimDisk[];
  nics: Array<Omit<SimNic, 'mac'> & { mac?: string }>;
  onPoweroff: LifecycleAction;
  onReboot: LifecycleAction;
  onWatchdog: LifecycleAction;
  onCrash: LifecycleAction;
  warnings: string[];
}

const ACTIONS: readonly LifecycleAction[] = [
  'destroy',
  'restart',
  'rename-restart',
  'preserve',
  'coredump-destroy',
  'coredump-restart',
  'soft-reset',
];
const FORMATS = ['raw', 'qcow', 'qcow2', 'vhd', 'qed', 'empty'];

/** strtol(s, NULL, 0): 0x hex, leading 0 octal, otherwise decimal; the whole string must parse. */
function strtol0(s: string): number | undefined {
  const t = s.trim();
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) return parseInt(t.slice(2), 16);
  if (/^0[0-7]+$/.test(t)) return parseInt(t.slice(1), 8);
  if (/^[0-9]+$/.test(t)) return parseInt(t, 10);
  return undefined;
}

export function parseDomainConfig(path: string, text: string): ParsedDomainConfig {
  let cfg: Map<string, CfgValue>;
  try {
    cfg = normalizeCfg(parseXlCfg(text));
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // The parser's message is expected to carry libxlu's `PATH:LINE: config parsing error ...`
    // wording; xl then adds its own verdict line and exits 1.
    const first = msg.startsWith(path) ? msg : `${path}:${msg}`;
    throw new XlCfgError([first, 'Failed to parse config: Invalid argument'], 1);
  }
  const warnings: string[] = [];
  const str = (key: string): string | undefined => {
    const v = cfg.get(key);
    if (v === undefined) return undefined;
    if (Array.isArray(v)) {
      warnings.push(`${path}: warning: parameter \`${key}' is a list but should be a single value`);
      return undefined;
    }
    return v;
  };
  const num = (key: string): number | undefined => {
    const v = str(key);
    if (v === undefined) return undefined;
    const n = strtol0(v);
    if (n === undefined) warnings.push(`${path}: warning: parameter \`${key}' is not a valid number`);
    return n;
  };
  const list = (key: string): string[] => {
    const v = cfg.get(key);
    if (v === undefined) return [];
    return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
  };

  const name = str('name');
  if (!name) throw new XlCfgError(['Domain name must be specified.'], 1);
  let type: 'pv' | 'pvh' | 'hvm' = 'pv';
  const typeStr = str('type');
  if (typeStr !== undefined) {
    // xl compares strncmp(buf, T, strlen(buf)) against hvm, pv, pvh in that order, so
    // `"h"` means hvm and `"pv"` is pv (it is tried before pvh).
    const match = (['hvm', 'pv', 'pvh'] as const).find((t) => t.startsWith(typeStr));
    if (!match) throw new XlCfgError([`Invalid domain type ${typeStr}.`], 1);
    type = match;
  }
  const action = (key: string, dflt: LifecycleAction): LifecycleAction => {
    const v = str(key);
    if (v === undefined) return dflt;
    const a = ACTIONS.find((x) => x === v);
    if (!a) throw new XlCfgError([`Unknown ${key} action "${v}" specified`], 1);
    return a;
  };
  const memory = num('memory');
  const maxmem = num('maxmem');
  const memoryMb = memory ?? maxmem ?? 32;
  const maxMemoryMb = maxmem ?? memoryMb;
  const vcpus = Math.max(1, num('vcpus') ?? 1);
  const maxVcpus = num('maxvcpus') ?? vcpus;
  const uuid = str('uuid');
  if (
    uuid !== undefined &&
    !/^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/.test(uuid)
  ) {
    throw new XlCfgError([`Failed to parse UUID: ${uuid}`], 1);
  }
  let cmdline = str('cmdline');
  const root = str('root');
  const extra = str('extra');
  if (cmdline !== undefined && (root !== undefined || extra !== undefined)) {
    warnings.push('Warning: ignoring root= and extra= in favour of cmdline=');
  } else if (root !== undefined) {
    cmdline = extra !== undefined ? `root=${root} ${extra}` : `root=${root}`;
  } else if (extra !== undefined) {
    cmdline = extra;
  }
  const disks = list('disk').map((spec) => parseDiskSpec(path, spec));
  const nics = list('vif').map((spec, devid) => parseVifSpec(spec, devid));
  return {
    name,
    uuid: uuid?.toLowerCase(),
    type,
    memoryMb,
    maxMemoryMb,
    vcpus,
    maxVcpus,
    kernel: str('kernel'),
    ramdisk: str('ramdisk'),
    cmdline,
    bootloader: str('bootloader'),
    disks,
    nics,
    onPoweroff: action('on_poweroff', 'destroy'),
    onReboot: action('on_reboot', 'restart'),
    onWatchdog: action('on_watchdog', 'destroy'),
    onCrash: action('on_crash', 'destroy'),
    warnings,
  };
}

function diskError(path: string, spec: string, message: string, near?: string): XlCfgError {
  const nearText = near !== undefined ? `: near \`${near}'` : '';
  return new XlCfgError(
    [`${path}: config parsing error in disk specification: ${message}${nearText} in \`${spec}'`],
    1,
  );
}

/** DISKSPEC (xl-disk-configuration.5): named keys, positional `target,format,vdev,access`, or the deprecated `phy:/x,xvda,w`. */
export function parseDiskSpec(path: string, spec: string): SimDisk {
  const parts = spec.split(',');
  let target: string | undefined;
  let format: string | undefined;
  let vdev: string | undefined;
  let access: string | undefined;
  const positional: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const token = (parts[i] ?? '').replace(/^\s+/, '');
    const eq = token.indexOf('=');
    const key = eq >= 0 ? token.slice(0, eq) : '';
    const value = eq >= 0 ? token.slice(eq + 1) : '';
    if (key === 'target') {
      // `target=` swallows the rest of the spec, commas included.
      target = [value, ...parts.slice(i + 1)].join(',');
      break;
    }
    if (key === 'format') format = value;
    else if (key === 'vdev') vdev = value;
    else if (key === 'access') access = value;
    else if (
      [
        'devtype',
        'backendtype',
        'backend',
        'script',
        'discard',
        'no-discard',
        'direct-io-safe',
        'specification',
      ].includes(key)
    )
      continue;
    else if (eq >= 0) throw diskError(path, spec, 'unknown parameter', token);
    else if (token === 'cdrom' || token === 'discard' || token === 'no-discard') continue;
    else positional.push(token);
  }
  let backend: 'phy' | 'qdisk' | undefined;
  const deprecated = positional.length === 3 && !FORMATS.includes(positional[1] ?? '');
  if (deprecated) {
    let t = positional[0] ?? '';
    const prefix = /^(phy|file|tap2?:[a-z0-9]+|aio|raw|qcow2?|vhd|qed):/.exec(t);
    if (prefix?.[1]) {
      const p = prefix[1];
      backend = p === 'phy' ? 'phy' : 'qdisk';
      if (['raw', 'qcow', 'qcow2', 'vhd', 'qed'].includes(p)) format = p;
      if (p.startsWith('tap')) format = p.split(':')[1] === 'aio' ? 'raw' : p.split(':')[1];
      t = t.slice(p.length + 1);
    }
    target = target ?? t;
    vdev = vdev ?? (positional[1] ?? '').split(':')[0];
    access = access ?? positional[2];
  } else {
    const [pTarget, pFormat, pVdev, pAccess] = positional;
    target = target ?? pTarget;
    format = format ?? pFormat;
    vdev = vdev ?? pVdev;
    access = access ?? pAccess;
  }
  format = format === undefined || format === '' ? 'raw' : format;
  if (!FORMATS.includes(format)) throw diskError(path, spec, 'unknown value for format', `format=${format}`);
  if (!vdev) throw diskError(path, spec, 'no vdev specified');
  let readwrite = true;
  if (access !== undefined && access !== '') {
    if (access === 'rw' || access === 'w') readwrite = true;
    else if (access === 'ro' || access === 'r') readwrite = false;
    else throw diskError(path, spec, 'unknown value for access', `access=${access}`);
  }
  const tgt = target ?? '';
  return {
    target: tgt,
    vdev,
    format,
    readwrite,
    backend: backend ?? (tgt.startsWith('/dev/') ? 'phy' : 'qdisk'),
  };
}

/** VIFSPEC: comma-separated `key=value`, all optional; `''` is a default NIC on xenbr0. */
export function parseVifSpec(spec: string, devid: number): Omit<SimNic, 'mac'> & { mac?: string } {
  const nic: Omit<SimNic, 'mac'> & { mac?: string } = { devid, bridge: 'xenbr0', script: 'vif-bridge' };
  for (const raw of spec.split(',')) {
    const token = raw.trim();
    if (!token) continue;
    const eq = token.indexOf('=');
    const key = eq >= 0 ? token.slice(0, eq) : token;
    const value = eq >= 0 ? token.slice(eq + 1) : '';
    switch (key) {
      case 'mac':
        if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(value))
          throw new XlCfgError([`Invalid mac address: ${value}`], 1);
        nic.mac = value.toLowerCase();
        break;
      case 'bridge':
        nic.bridge = value;
        break;
      case 'ip':
        nic.ip = value;
        break;
      case 'model':
        nic.model = value;
        break;
      case 'vifname':
        nic.vifname = value;
        break;
      case 'script':
        nic.script = value;
        break;
      default:
        break;
    }
  }
  return nic;
}

/** Stable per-host pseudo-random bytes, so simulated UUIDs and MACs are reproducible. */
export function stableBytes(seed: string, n: number): Buffer {
  return createHash('sha256').update(seed).digest().subarray(0, n);
}

export function stableUuid(seed: string): string {
  const b = Buffer.from(stableBytes(seed, 16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** libxl's generated MAC: Xen OUI, 4th octet masked with 0x7f. */
export function stableMac(seed: string): string {
  const b = stableBytes(seed, 3);
  const o = [(b[0] ?? 0) & 0x7f, b[1] ?? 0, b[2] ?? 0].map((x) => x.toString(16).padStart(2, '0'));
  return `00:16:3e:${o.join(':')}`;
}
