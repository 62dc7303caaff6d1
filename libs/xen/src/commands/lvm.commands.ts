import { assertLvName, assertPositiveInt, assertVgName } from '../validation/allow-lists';
import { type Argv } from './xl.commands';

/**
 * argv for the LVM reporting and volume commands. Reports use `|` (never valid in an LVM
 * name) and MiB without a suffix, which parseVgs/parseLvs read; the simulator implements
 * exactly these forms.
 */
const REPORT_OPTIONS = ['--noheadings', '--units', 'm', '--nosuffix', '--separator', '|'] as const;

export const VGS_FIELDS = 'vg_name,vg_size,vg_free,pv_count,lv_count';
export const LVS_FIELDS = 'vg_name,lv_name,lv_size,origin,lv_attr';

/** LVM's own ceiling is far higher; this only stops a unit mix-up (bytes for MiB) reaching a host. */
export const MAX_VOLUME_SIZE_MB = 64 * 1024 * 1024;

export function vgsArgv(): Argv {
  return ['vgs', ...REPORT_OPTIONS, '-o', VGS_FIELDS];
}

export function lvsArgv(vg?: string): Argv {
  const argv = ['lvs', ...REPORT_OPTIONS, '-o', LVS_FIELDS];
  if (vg !== undefined) {
    assertVgName(vg);
    argv.push(vg);
  }
  return argv;
}

/** `-y` answers lvcreate's "wipe signature?" prompt, which would otherwise hang a non-tty session. */
export function lvCreateArgv(vg: string, name: string, sizeMb: number): Argv {
  assertVgName(vg);
  assertLvName(name, 'name');
  assertPositiveInt(sizeMb, 'sizeMb', MAX_VOLUME_SIZE_MB);
  return ['lvcreate', '-y', '-L', `${sizeMb}m`, '-n', name, vg];
}

export function lvSnapshotArgv(vg: string, origin: string, name: string, sizeMb: number): Argv {
  assertVgName(vg);
  assertLvName(origin, 'origin');
  assertLvName(name, 'name');
  assertPositiveInt(sizeMb, 'sizeMb', MAX_VOLUME_SIZE_MB);
  return ['lvcreate', '-y', '-s', '-L', `${sizeMb}m`, '-n', name, `${vg}/${origin}`];
}

/** `-f` skips the confirmation prompt; Norm only removes volumes it owns. */
export function lvRemoveArgv(vg: string, name: string): Argv {
  assertVgName(vg);
  assertLvName(name, 'name');
  return ['lvremove', '-f', `${vg}/${name}`];
}
