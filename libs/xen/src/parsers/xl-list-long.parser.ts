import { type DomainDetail } from '@norm/core';
import { parseError, splitLines } from './parse-error';

/**
 * `xl list -l` (XL.md §1.6): a JSON array of `{domid, config}`. The shape moved between
 * versions, so every field is looked up where each version puts it:
 * - 4.2–4.4: per-type fields under `b_info.u`, every field printed, Domain-0 absent;
 * - 4.5+: `b_info."type.pv"` etc., default-valued fields omitted, Domain-0 present;
 * - 4.10+: bootloader at `b_info` top level; 4.14+: `c_info.domid` as well;
 * - 4.21 json-c: 2-space indent, no space after `:`, `\/` in strings (JSON.parse reads all of it).
 * Missing and unknown keys are expected; only output with no JSON array at all is refused.
 */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: Json | undefined): JsonObject {
  return isObject(v) ? v : {};
}

function str(v: Json | undefined): string | undefined {
  if (typeof v === 'string') return v;
  // libxl_file_reference-style objects carry the path in `path`.
  if (isObject(v) && typeof v.path === 'string') return v.path;
  return undefined;
}

function int(v: Json | undefined): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && /^[0-9]+$/.test(v)) return Number(v);
  return undefined;
}

function bool(v: Json | undefined): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  // libxl defbools print as "True"/"False".
  if (v === 'True') return true;
  if (v === 'False') return false;
  return undefined;
}

function first<T>(...values: Array<T | undefined>): T | undefined {
  return values.find((v) => v !== undefined);
}

/**
 * Finds the array among surrounding lines (warnings, banners) without guessing at
 * indentation: it starts at the first line whose first non-blank character is `[`. The
 * output is searched in place rather than split into lines, because with many domains it
 * is hundreds of KiB and the sync loop reads it from every host on every pass.
 */
function extractJson(text: string): Json {
  const open = /^[ \t]*\[/m.exec(text);
  if (!open) {
    if (/^[ \t]*\(domain/m.test(text)) {
      throw parseError('xl list -l', 'S-expression output (Xen 4.1 or output_format="sxp") is not supported');
    }
    throw parseError('xl list -l', 'no JSON array found');
  }
  const end = text.lastIndexOf(']');
  try {
    return JSON.parse(text.slice(open.index, end + 1)) as Json;
  } catch (err) {
    throw parseError('xl list -l', `invalid JSON: ${err instanceof Error ? err.message : 'unknown error'}`, {
      line: splitLines(text.slice(0, open.index)).length,
    });
  }
}

export function parseXlListLong(text: string): DomainDetail[] {
  const json = extractJson(text);
  if (!Array.isArray(json)) throw parseError('xl list -l', 'top level is not an array');
  const out: DomainDetail[] = [];
  for (const entry of json) {
    const detail = readEntry(obj(entry));
    if (detail) out.push(detail);
  }
  return out;
}

function readEntry(entry: JsonObject): DomainDetail | undefined {
  // `xl create -n` (4.9+) prints the bare config; accept it the same way.
  const config = isObject(entry.config) ? entry.config : entry;
  const cInfo = obj(config.c_info);
  const bInfo = obj(config.b_info);
  const domid = first(int(entry.domid), int(cInfo.domid));
  const name = first(str(cInfo.name), domid === 0 ? 'Domain-0' : undefined);
  // Without both there is nothing to match the entry with; xl itself skips such domains.
  if (domid === undefined || name === undefined) return undefined;

  const typeKey = Object.keys(bInfo).find((k) => k.startsWith('type.'));
  const perType = obj(first(bInfo.u, typeKey !== undefined ? bInfo[typeKey] : undefined));
  const pick = (key: string): string | undefined => first(str(bInfo[key]), str(perType[key]));

  const detail: DomainDetail = { domid, name, disks: [], nics: [] };
  const uuid = str(cInfo.uuid);
  if (uuid !== undefined) detail.uuid = uuid;
  const type = first(str(cInfo.type), typeKey?.slice('type.'.length));
  if (type !== undefined) detail.type = type;
  const maxVcpus = int(bInfo.max_vcpus);
  if (maxVcpus !== undefined) detail.maxVcpus = maxVcpus;
  const maxMemoryKb = int(bInfo.max_memkb);
  if (maxMemoryKb !== undefined) detail.maxMemoryKb = maxMemoryKb;
  const targetMemoryKb = int(bInfo.target_memkb);
  if (targetMemoryKb !== undefined) detail.targetMemoryKb = targetMemoryKb;
  const kernel = pick('kernel');
  if (kernel !== undefined) detail.kernel = kernel;
  const ramdisk = pick('ramdisk');
  if (ramdisk !== undefined) detail.ramdisk = ramdisk;
  const cmdline = pick('cmdline');
  if (cmdline !== undefined) detail.cmdline = cmdline;
  const bootloader = pick('bootloader');
  if (bootloader !== undefined) detail.bootloader = bootloader;

  for (const d of Array.isArray(config.disks) ? config.disks : []) {
    const disk = obj(d);
    const out: DomainDetail['disks'][number] = {};
    const target = str(disk.pdev_path);
    if (target !== undefined) out.target = target;
    const vdev = str(disk.vdev);
    if (vdev !== undefined) out.vdev = vdev;
    const format = str(disk.format);
    if (format !== undefined) out.format = format;
    const backend = str(disk.backend);
    if (backend !== undefined) out.backend = backend;
    // Absent on 4.5+ when 0 (defaults omitted), but left unknown rather than guessed.
    const readwrite = bool(disk.readwrite);
    if (readwrite !== undefined) out.readwrite = readwrite;
    detail.disks.push(out);
  }
  for (const n of Array.isArray(config.nics) ? config.nics : []) {
    const nic = obj(n);
    const out: DomainDetail['nics'][number] = {};
    const mac = str(nic.mac);
    if (mac !== undefined) out.mac = mac.toLowerCase();
    const bridge = str(nic.bridge);
    if (bridge !== undefined) out.bridge = bridge;
    const ip = str(nic.ip);
    if (ip !== undefined) out.ip = ip;
    const devid = int(nic.devid);
    if (devid !== undefined) out.devid = devid;
    detail.nics.push(out);
  }
  return detail;
}
