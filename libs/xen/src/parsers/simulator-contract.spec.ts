import { describe, expect, it } from 'vitest';
import { lvCreateArgv, lvRemoveArgv, lvSnapshotArgv, lvsArgv, vgsArgv } from '../commands/lvm.commands';
import {
  xlCreateArgv,
  xlDestroyArgv,
  xlInfoArgv,
  xlListArgv,
  xlListLongArgv,
  xlPauseArgv,
  xlShutdownArgv,
} from '../commands/xl.commands';
import { classifyRemoteFailure } from '../errors/xen.errors';
import { quoteArgv } from '../shell/shell-quote';
import { SimulatedXenHost, splitShellWords } from '../testing';
import { renderXlCfg } from '../xl-cfg/xl-cfg.renderer';
import { parseLvs, parseVgs } from './lvm.parser';
import { parseXlInfo } from './xl-info.parser';
import { parseXlList } from './xl-list.parser';
import { parseXlListLong } from './xl-list-long.parser';

/**
 * The builders, renderer and parsers against the simulator, which reproduces xl 4.17 and LVM
 * byte for byte: if either side drifts from the argv contract or the formats, this fails.
 */
async function run(host: SimulatedXenHost, argv: readonly string[]): Promise<string> {
  const r = await host.exec(argv);
  if (r.exitCode !== 0) {
    throw classifyRemoteFailure({ host: host.hostname, argv, durationMs: 0, ...r });
  }
  return r.stdout;
}

describe('builders and parsers against the simulated host', () => {
  it('creates, lists, inspects and destroys a domain on a snapshot volume', async () => {
    const host = new SimulatedXenHost({ hostname: 'xen-contract' });
    const [vg] = parseVgs(await run(host, vgsArgv()));
    expect(vg).toBeDefined();
    const vgName = vg?.name ?? '';

    await run(host, lvCreateArgv(vgName, 'golden', 1024));
    await run(host, lvSnapshotArgv(vgName, 'golden', 'web-1', 1024));
    expect(parseLvs(await run(host, lvsArgv(vgName)))).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ vg: vgName, name: 'web-1', origin: 'golden', sizeMb: 1024 }),
      ]),
    );

    const cfgPath = `${host.configDir}/web-1.cfg`;
    host.fs.writeFile(
      cfgPath,
      renderXlCfg({
        name: 'web-1',
        vcpus: 2,
        memoryMb: 512,
        boot: {
          kind: 'kernel',
          kernel: '/boot/vmlinuz',
          root: '/dev/xvda',
          extra: `console=hvc0 note="a \\ b"`,
        },
        disks: [{ target: `/dev/${vgName}/web-1`, vdev: 'xvda', access: 'rw' }],
        vifs: [{ mac: '00:16:3e:12:34:56', bridge: 'xenbr0' }],
      }),
    );
    await run(host, xlCreateArgv(cfgPath));

    const info = parseXlInfo(await run(host, xlInfoArgv()));
    expect(info).toMatchObject({ host: 'xen-contract', xenMajor: 4, xenMinor: 17 });

    const listed = parseXlList(await run(host, xlListArgv()));
    expect(listed.map((d) => d.name)).toEqual(['Domain-0', 'web-1']);
    expect(listed[1]).toMatchObject({ memoryMb: 512, vcpus: 2 });

    const [, detail] = parseXlListLong(await run(host, xlListLongArgv()));
    expect(detail).toMatchObject({
      name: 'web-1',
      type: 'pv',
      maxVcpus: 2,
      targetMemoryKb: 512 * 1024,
      kernel: '/boot/vmlinuz',
      cmdline: 'root=/dev/xvda console=hvc0 note="a \\ b"',
      disks: [{ target: `/dev/${vgName}/web-1`, vdev: 'xvda', readwrite: true }],
      nics: [{ mac: '00:16:3e:12:34:56', bridge: 'xenbr0', devid: 0 }],
    });

    await run(host, xlPauseArgv('web-1'));
    expect(parseXlList(await run(host, xlListArgv()))[1]?.flags.paused).toBe(true);

    await expect(run(host, xlCreateArgv(cfgPath))).rejects.toMatchObject({ code: 'DomainExists' });
    await run(host, xlDestroyArgv('web-1'));
    await expect(run(host, xlDestroyArgv('web-1'))).rejects.toMatchObject({ code: 'DomainNotFound' });
    await run(host, lvRemoveArgv(vgName, 'web-1'));
    await expect(run(host, lvRemoveArgv(vgName, 'web-1'))).rejects.toMatchObject({
      details: expect.objectContaining({ kind: 'VolumeNotFound' }) as unknown,
    });
  });

  it('classifies exactly the failures the simulated 4.17 host prints', async () => {
    const host = new SimulatedXenHost({ hostname: 'xen-contract', timings: { shutdownMs: 0, cleanupMs: 0 } });
    const kind = (argv: readonly string[]): Promise<unknown> =>
      run(host, argv).then(
        () => 'ok',
        (err: { code: string; details: { kind?: string } }) => err.details.kind ?? err.code,
      );
    expect(await kind(xlShutdownArgv('ghost'))).toBe('DomainNotFound');
    expect(await kind(xlPauseArgv('ghost'))).toBe('DomainNotFound');
    expect(await kind(['xl', 'list', 'ghost'])).toBe('DomainNotFound');
    expect(await kind(['xl', 'list', '99'])).toBe('DomainNotFound');
    expect(await kind(['xl', 'domid', 'ghost'])).toBe('DomainNotFound');
    expect(await kind(['xl', 'destroy', '99'])).toBe('DomainNotFound');

    await run(host, lvCreateArgv('vg0', 'big', 64));
    expect(await kind(lvCreateArgv('vg0', 'big', 64))).toBe('VolumeExists');
    expect(await kind(lvCreateArgv('vg0', 'huge', 1024 * 1024))).toBe('InsufficientStorage');
    expect(await kind(lvRemoveArgv('vg0', 'ghost'))).toBe('VolumeNotFound');

    const cfg = (name: string, memoryMb: number, disk: string): string => {
      const path = `${host.configDir}/${name}.cfg`;
      host.fs.writeFile(
        path,
        renderXlCfg({
          name,
          vcpus: 1,
          memoryMb,
          boot: { kind: 'kernel', kernel: '/boot/vmlinuz' },
          disks: [{ target: disk, vdev: 'xvda', access: 'rw' }],
          vifs: [],
        }),
      );
      return path;
    };
    host.faults.setFreeMemoryMb(128);
    expect(await kind(xlCreateArgv(cfg('big', 1024, '/dev/vg0/big')))).toBe('InsufficientMemory');
    // libxl stats the disk before it builds anything, so a missing disk wins over memory.
    expect(await kind(xlCreateArgv(cfg('nodisk', 1024, '/dev/vg0/nodisk')))).toBe('XlCommandError');
    expect(await kind(xlCreateArgv(cfg('small', 64, '/dev/vg0/big')))).toBe('ok');
    expect(await kind(xlCreateArgv(cfg('small', 64, '/dev/vg0/big')))).toBe('DomainExists');
    expect(await kind(xlShutdownArgv('small'))).toBe('ok');
    expect(parseXlList(await run(host, xlListArgv())).map((d) => d.name)).toEqual(['Domain-0']);
  });

  it('the simulator splits quoted command lines back into the same argv', () => {
    const argv = ['lvs', '--separator', '|', "it's", '$(x)', ''];
    expect(splitShellWords(quoteArgv(argv))).toMatchObject({ words: argv });
  });
});
