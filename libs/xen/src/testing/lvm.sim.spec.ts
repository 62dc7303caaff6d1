import { describe, expect, it } from 'vitest';
import { cowMaxMb } from './lvm.sim';
import { SimulatedXenHost } from './xen-host.sim';

const VGS = [
  'vgs',
  '--noheadings',
  '--units',
  'm',
  '--nosuffix',
  '--separator',
  '|',
  '-o',
  'vg_name,vg_size,vg_free,pv_count,lv_count',
];
const LVS = [
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

function host(): SimulatedXenHost {
  return new SimulatedXenHost({
    volumeGroups: [{ name: 'vg0', sizeMb: 512 * 1024 }],
    goldenVolumes: [{ name: 'golden-tiny', sizeMb: 64 }],
  });
}

describe('LVM simulator', () => {
  it('reports the VG and LVs in the noheadings/separator form', async () => {
    const h = host();
    expect(await h.exec(VGS)).toEqual({ stdout: '  vg0|524284.00|524220.00|1|1\n', stderr: '', exitCode: 0 });
    expect(await h.exec([...LVS, 'vg0'])).toEqual({
      stdout: '  vg0|golden-tiny|64.00||-wi-a-----\n',
      stderr: '',
      exitCode: 0,
    });
  });

  it('creates snapshots capped at the usable COW size, like xenlab printed', async () => {
    const h = host();
    expect(cowMaxMb(64, 4)).toBe(68);
    expect(await h.exec(['lvcreate', '-y', '-s', '-L', '128m', '-n', 'web1', 'vg0/golden-tiny'])).toEqual({
      stdout:
        '  Reducing COW size 128.00 MiB down to maximum usable size 68.00 MiB.\n  Logical volume "web1" created.\n',
      stderr: '',
      exitCode: 0,
    });
    expect((await h.exec(LVS)).stdout).toBe(
      '  vg0|golden-tiny|64.00||owi-a-s---\n  vg0|web1|68.00|golden-tiny|swi-a-s---\n',
    );
    expect(await h.exec(['lvcreate', '-y', '-s', '-L', '128m', '-n', 'web1', 'vg0/golden-tiny'])).toEqual({
      stdout: '  Reducing COW size 128.00 MiB down to maximum usable size 68.00 MiB.\n',
      stderr: '  Logical Volume "web1" already exists in volume group "vg0"\n',
      exitCode: 5,
    });
    expect(await h.exec(['lvcreate', '-y', '-s', '-L', '128m', '-n', 'x', 'vg0/nosuchorigin'])).toEqual({
      stdout: '',
      stderr: '  Snapshot origin LV nosuchorigin not found in Volume group vg0.\n',
      exitCode: 5,
    });
  });

  it('refuses a volume that does not fit', async () => {
    const h = new SimulatedXenHost({ volumeGroups: [{ name: 'vg0', sizeMb: 1024 }], goldenVolumes: [] });
    expect(await h.exec(['lvcreate', '-y', '-L', '2048m', '-n', 'big', 'vg0'])).toEqual({
      stdout: '',
      stderr: '  Volume group "vg0" has insufficient free space (255 extents): 512 required.\n',
      exitCode: 5,
    });
    expect((await h.exec(['lvcreate', '-y', '-L', '512m', '-n', 'ok', 'vg0'])).stdout).toBe(
      '  Logical volume "ok" created.\n',
    );
  });

  it('removes volumes, refusing missing ones and ones a domain uses', async () => {
    const h = host();
    await h.exec(['lvcreate', '-y', '-L', '128m', '-n', 'data', 'vg0']);
    h.fs.writeFile(
      '/var/lib/norm/domains/d.cfg',
      'name = "d"\nmemory = 64\ndisk = [ "format=raw, vdev=xvda, access=rw, target=/dev/vg0/data" ]\n',
    );
    expect((await h.exec(['xl', 'create', '/var/lib/norm/domains/d.cfg'])).exitCode).toBe(0);
    expect((await h.exec([...LVS, 'vg0'])).stdout).toContain('  vg0|data|128.00||-wi-ao----\n');
    expect(await h.exec(['lvremove', '-f', 'vg0/data'])).toEqual({
      stdout: '',
      stderr: '  Logical volume vg0/data in use.\n',
      exitCode: 5,
    });
    await h.exec(['xl', 'destroy', 'd']);
    expect(await h.exec(['lvremove', '-f', 'vg0/data'])).toEqual({
      stdout: '  Logical volume "data" successfully removed.\n',
      stderr: '',
      exitCode: 0,
    });
    expect(await h.exec(['lvremove', '-f', 'vg0/data'])).toEqual({
      stdout: '',
      stderr: '  Failed to find logical volume "vg0/data"\n',
      exitCode: 5,
    });
  });

  it('runs through sudo -n, records it, and refuses other sudo forms and unknown commands', async () => {
    const h = host();
    expect((await h.exec(['sudo', '-n', ...VGS])).exitCode).toBe(0);
    expect(h.log.at(-1)).toMatchObject({ sudo: true, command: VGS });
    expect(await h.exec(['sudo', '-n', 'id'])).toEqual({
      stdout: '',
      stderr: 'sudo: a password is required\n',
      exitCode: 1,
    });
    expect(await h.exec(['dd', 'if=/dev/zero'])).toEqual({
      stdout: '',
      stderr: 'sh: 1: dd: not found\n',
      exitCode: 127,
    });
  });
});
