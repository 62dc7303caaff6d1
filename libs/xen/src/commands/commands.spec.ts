import { describe, expect, it } from 'vitest';
import { lvCreateArgv, lvRemoveArgv, lvSnapshotArgv, lvsArgv, vgsArgv } from './lvm.commands';
import {
  xlCreateArgv,
  xlDestroyArgv,
  xlInfoArgv,
  xlListArgv,
  xlListLongArgv,
  xlPauseArgv,
  xlRebootArgv,
  xlShutdownArgv,
  xlUnpauseArgv,
} from './xl.commands';

const unsafe = expect.objectContaining({ code: 'UnsafeArgument' }) as Error;

describe('xl argv builders', () => {
  it('build exactly the forms the simulator implements', () => {
    expect(xlInfoArgv()).toEqual(['xl', 'info']);
    expect(xlListArgv()).toEqual(['xl', 'list']);
    expect(xlListLongArgv()).toEqual(['xl', 'list', '-l']);
    expect(xlCreateArgv('/etc/xen/norm/web-1.cfg')).toEqual(['xl', 'create', '/etc/xen/norm/web-1.cfg']);
    expect(xlShutdownArgv('web-1')).toEqual(['xl', 'shutdown', '-ww', 'web-1']);
    expect(xlDestroyArgv('web-1')).toEqual(['xl', 'destroy', 'web-1']);
    expect(xlRebootArgv('web-1')).toEqual(['xl', 'reboot', 'web-1']);
    expect(xlPauseArgv('web-1')).toEqual(['xl', 'pause', 'web-1']);
    expect(xlUnpauseArgv('web-1')).toEqual(['xl', 'unpause', 'web-1']);
  });

  it('refuse unsafe domain names and config paths', () => {
    for (const build of [xlShutdownArgv, xlDestroyArgv, xlRebootArgv, xlPauseArgv, xlUnpauseArgv]) {
      expect(() => build('-a')).toThrow(unsafe);
      expect(() => build('0')).toThrow(unsafe);
      expect(() => build('x;reboot')).toThrow(unsafe);
    }
    expect(() => xlCreateArgv('web.cfg')).toThrow(unsafe);
    expect(() => xlCreateArgv('/etc/xen/../shadow')).toThrow(unsafe);
  });
});

describe('LVM argv builders', () => {
  it('build exactly the forms the simulator implements', () => {
    expect(vgsArgv()).toEqual([
      'vgs',
      '--noheadings',
      '--units',
      'm',
      '--nosuffix',
      '--separator',
      '|',
      '-o',
      'vg_name,vg_size,vg_free,pv_count,lv_count',
    ]);
    const lvs = [
      'lvs',
      '--noheadings',
      '--units',
      'm',
      '--nosuffix',
      '--separator',
      '|',
      '-o',
      'vg_name,lv_name,lv_size,origin,lv_attr',
    ];
    expect(lvsArgv()).toEqual(lvs);
    expect(lvsArgv('vg0')).toEqual([...lvs, 'vg0']);
    expect(lvCreateArgv('vg0', 'web-1', 10240)).toEqual([
      'lvcreate',
      '-y',
      '-L',
      '10240m',
      '-n',
      'web-1',
      'vg0',
    ]);
    expect(lvSnapshotArgv('vg0', 'golden-debian12', 'web-1', 10240)).toEqual([
      'lvcreate',
      '-y',
      '-s',
      '-L',
      '10240m',
      '-n',
      'web-1',
      'vg0/golden-debian12',
    ]);
    expect(lvRemoveArgv('vg0', 'web-1')).toEqual(['lvremove', '-f', 'vg0/web-1']);
  });

  it('refuse unsafe names and sizes', () => {
    expect(() => lvsArgv('-a')).toThrow(unsafe);
    expect(() => lvCreateArgv('vg0', 'snapshot1', 10)).toThrow(unsafe);
    expect(() => lvCreateArgv('vg/0', 'x', 10)).toThrow(unsafe);
    expect(() => lvCreateArgv('vg0', 'x', 0)).toThrow(unsafe);
    expect(() => lvCreateArgv('vg0', 'x', 1.5)).toThrow(unsafe);
    expect(() => lvCreateArgv('vg0', 'x', 2 ** 40)).toThrow(unsafe);
    expect(() => lvSnapshotArgv('vg0', '../x', 'y', 10)).toThrow(unsafe);
    expect(() => lvRemoveArgv('vg0', '--all')).toThrow(unsafe);
  });
});
