import { type XenInfo } from '@norm/core';
import { parseError, splitLines } from './parse-error';

/**
 * `xl info` (XL.md §2): `key` padded to 23 characters, `:` and the value. Keys come and go
 * between versions, values may be empty or carry trailing spaces, and lines from other
 * tools (warnings, login banners) may surround the block, so the parser reads every line
 * shaped like `lower_case_key : value` and only insists on the keys XenInfo cannot do without.
 */
const INFO_LINE = /^([a-z][a-z0-9_]*(?: [a-z]+)?)[ \t]*:(.*)$/;
const REQUIRED = ['host', 'nr_cpus', 'total_memory', 'free_memory', 'xen_major', 'xen_minor'] as const;

export function parseXlInfo(text: string): XenInfo {
  const raw: Record<string, string> = {};
  for (const line of splitLines(text)) {
    const m = INFO_LINE.exec(line);
    if (!m?.[1]) continue;
    const key = m[1];
    // The first occurrence wins: `xl info -n` blocks and stray tool output come after the keys.
    if (Object.hasOwn(raw, key)) continue;
    raw[key] = (m[2] ?? '').trim();
  }
  const missing = REQUIRED.filter((k) => !Object.hasOwn(raw, k));
  if (missing.length === REQUIRED.length) throw parseError('xl info', 'no xl info keys found');
  if (missing.length > 0) throw parseError('xl info', `missing keys: ${missing.join(', ')}`);

  const int = (key: (typeof REQUIRED)[number]): number => {
    const v = raw[key] ?? '';
    if (!/^[0-9]+$/.test(v))
      throw parseError('xl info', `${key} is not a non-negative integer`, { excerpt: v });
    return Number(v);
  };
  const optInt = (key: string): number | undefined => {
    const v = raw[key];
    return v !== undefined && /^[0-9]+$/.test(v) ? Number(v) : undefined;
  };
  const optStr = (key: string): string | undefined => raw[key];

  const xenMajor = int('xen_major');
  const xenMinor = int('xen_minor');
  const xenExtra = raw.xen_extra ?? '';
  const cpuMhzText = raw.cpu_mhz;
  // Integer MHz up to 4.10, `%d.%03d` from 4.11.
  const cpuMhz =
    cpuMhzText !== undefined && /^[0-9]+(\.[0-9]+)?$/.test(cpuMhzText) ? Number(cpuMhzText) : undefined;
  const virtCaps = (raw.virt_caps ?? '').split(/\s+/).filter((c) => c !== '');

  const info: XenInfo = {
    host: raw.host ?? '',
    nrCpus: int('nr_cpus'),
    virtCaps,
    totalMemoryMb: int('total_memory'),
    freeMemoryMb: int('free_memory'),
    xenMajor,
    xenMinor,
    xenExtra,
    // Printed from 4.4; earlier versions are rebuilt the same way xl does it.
    xenVersion:
      raw.xen_version !== undefined && raw.xen_version !== ''
        ? raw.xen_version
        : `${xenMajor}.${xenMinor}${xenExtra}`,
    raw,
  };
  const release = optStr('release');
  if (release !== undefined) info.release = release;
  const machine = optStr('machine');
  if (machine !== undefined) info.machine = machine;
  const cores = optInt('cores_per_socket');
  if (cores !== undefined) info.coresPerSocket = cores;
  const threads = optInt('threads_per_core');
  if (threads !== undefined) info.threadsPerCore = threads;
  if (cpuMhz !== undefined) info.cpuMhz = cpuMhz;
  const claims = optInt('outstanding_claims');
  if (claims !== undefined) info.outstandingClaimsMb = claims;
  const scheduler = optStr('xen_scheduler');
  if (scheduler !== undefined) info.xenScheduler = scheduler;
  const commandline = optStr('xen_commandline');
  if (commandline !== undefined) info.xenCommandline = commandline;
  const buildId = optStr('build_id');
  if (buildId !== undefined && buildId !== '') info.buildId = buildId;
  return info;
}
