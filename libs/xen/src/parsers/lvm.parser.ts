import { type LogicalVolume, type VolumeGroup } from '@norm/core';
import { parseError, splitLines } from './parse-error';

/**
 * `vgs`/`lvs` with `--noheadings --units m --nosuffix --separator '|'` (see lvm.commands):
 * two leading spaces, then `|`-separated fields, sizes like `8188.00`. `|` never occurs in
 * an LVM name, so a line without it is not a row (a WARNING, a banner) and is skipped; a
 * line with it but the wrong shape means the output is not what we asked for, and is refused
 * rather than read as "no volumes", which a reconciler would act on.
 */
// LVM may print `<` before a rounded size, and follows LC_NUMERIC for the decimal mark.
const SIZE = /^<?([0-9]+)(?:[.,]([0-9]+))?$/;

function size(format: string, field: string, value: string, line: number): number {
  const m = SIZE.exec(value.trim());
  if (!m) throw parseError(format, `${field} is not a size in MiB`, { line, excerpt: value });
  return Number(`${m[1] ?? '0'}.${m[2] ?? '0'}`);
}

function count(value: string): number | undefined {
  const v = value.trim();
  return /^[0-9]+$/.test(v) ? Number(v) : undefined;
}

function rows(format: string, text: string, width: number): Array<{ fields: string[]; line: number }> {
  const out: Array<{ fields: string[]; line: number }> = [];
  splitLines(text).forEach((raw, index) => {
    if (!raw.includes('|')) return;
    const fields = raw.trim().split('|');
    if (fields.length !== width) {
      throw parseError(format, `expected ${width} fields, found ${fields.length}`, {
        line: index + 1,
        excerpt: raw,
      });
    }
    out.push({ fields: fields.map((f) => f.trim()), line: index + 1 });
  });
  return out;
}

export function parseVgs(text: string): VolumeGroup[] {
  return rows('vgs', text, 5).map(({ fields, line }) => {
    const [name = '', vgSize = '', vgFree = '', pvCount = '', lvCount = ''] = fields;
    if (name === '') throw parseError('vgs', 'empty volume group name', { line });
    const vg: VolumeGroup = {
      name,
      sizeMb: size('vgs', 'vg_size', vgSize, line),
      freeMb: size('vgs', 'vg_free', vgFree, line),
    };
    const pv = count(pvCount);
    if (pv !== undefined) vg.pvCount = pv;
    const lv = count(lvCount);
    if (lv !== undefined) vg.lvCount = lv;
    return vg;
  });
}

export function parseLvs(text: string): LogicalVolume[] {
  return rows('lvs', text, 5).map(({ fields, line }) => {
    const [vg = '', name = '', lvSize = '', origin = '', attr = ''] = fields;
    if (vg === '' || name === '') throw parseError('lvs', 'empty volume group or volume name', { line });
    const lv: LogicalVolume = { vg, name, sizeMb: size('lvs', 'lv_size', lvSize, line) };
    if (origin !== '') lv.origin = origin;
    if (attr !== '') lv.attr = attr;
    return lv;
  });
}
