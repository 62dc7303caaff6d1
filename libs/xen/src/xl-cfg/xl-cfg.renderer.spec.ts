import { type DomainConfig } from '@norm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseXlCfg } from './xl-cfg.parser';
import { hasControlCharacter, MAX_CMDLINE_BYTES, quoteXlCfgString, renderXlCfg } from './xl-cfg.renderer';

function config(over: Partial<DomainConfig> = {}): DomainConfig {
  return {
    name: 'web-1',
    uuid: '5e0b1f5a-8c1e-4f0a-9b2d-3c4e5f607182',
    vcpus: 2,
    memoryMb: 2048,
    boot: {
      kind: 'kernel',
      kernel: '/var/lib/norm/kernels/vmlinuz-6.1',
      ramdisk: '/var/lib/norm/kernels/initrd-6.1',
      root: '/dev/xvda',
      extra: 'ro console=hvc0',
    },
    disks: [{ target: '/dev/vg0/web-1', vdev: 'xvda', access: 'rw' }],
    vifs: [{ mac: '00:16:3E:5A:01:02', bridge: 'xenbr0' }],
    onPoweroff: 'destroy',
    onReboot: 'restart',
    onCrash: 'preserve',
    ...over,
  };
}

const unsafe = expect.objectContaining({ code: 'UnsafeArgument' }) as Error;

describe('renderXlCfg', () => {
  it('renders the documented layout', () => {
    expect(renderXlCfg(config())).toBe(
      [
        '# Written by Norm; changes here are overwritten on the next create.',
        'name = "web-1"',
        'uuid = "5e0b1f5a-8c1e-4f0a-9b2d-3c4e5f607182"',
        'type = "pv"',
        'memory = 2048',
        'maxmem = 2048',
        'vcpus = 2',
        'kernel = "/var/lib/norm/kernels/vmlinuz-6.1"',
        'ramdisk = "/var/lib/norm/kernels/initrd-6.1"',
        'root = "/dev/xvda"',
        'extra = "ro console=hvc0"',
        "disk = [ 'format=raw, vdev=xvda, access=rw, target=/dev/vg0/web-1' ]",
        "vif = [ 'mac=00:16:3e:5a:01:02,bridge=xenbr0' ]",
        'on_poweroff = "destroy"',
        'on_reboot = "restart"',
        'on_crash = "preserve"',
        '',
      ].join('\n'),
    );
  });

  it('renders pygrub, several disks and vifs, an ip, and leaves out unset optionals', () => {
    const text = renderXlCfg(
      config({
        uuid: undefined,
        boot: { kind: 'pygrub' },
        disks: [
          { target: '/dev/vg0/a', vdev: 'xvda', access: 'rw', format: 'raw' },
          { target: '/srv/img/b.qcow2', vdev: 'xvdb', access: 'ro', format: 'qcow2' },
        ],
        vifs: [
          { mac: '00:16:3e:00:00:01', bridge: 'xenbr0', ip: '10.0.0.5' },
          { mac: '02:00:00:00:00:02', bridge: 'br-lan' },
        ],
        onPoweroff: undefined,
        onReboot: undefined,
        onCrash: undefined,
      }),
    );
    const cfg = parseXlCfg(text);
    expect(cfg.get('bootloader')).toBe('pygrub');
    expect(cfg.has('uuid')).toBe(false);
    expect(cfg.has('kernel')).toBe(false);
    expect(cfg.has('on_crash')).toBe(false);
    expect(cfg.get('disk')).toEqual([
      'format=raw, vdev=xvda, access=rw, target=/dev/vg0/a',
      'format=qcow2, vdev=xvdb, access=ro, target=/srv/img/b.qcow2',
    ]);
    expect(cfg.get('vif')).toEqual([
      'mac=00:16:3e:00:00:01,bridge=xenbr0,ip=10.0.0.5',
      'mac=02:00:00:00:00:02,bridge=br-lan',
    ]);
  });

  it('round-trips through parseXlCfg', () => {
    const cfg = parseXlCfg(renderXlCfg(config()));
    expect(Object.fromEntries(cfg)).toEqual({
      name: 'web-1',
      uuid: '5e0b1f5a-8c1e-4f0a-9b2d-3c4e5f607182',
      type: 'pv',
      memory: '2048',
      maxmem: '2048',
      vcpus: '2',
      kernel: '/var/lib/norm/kernels/vmlinuz-6.1',
      ramdisk: '/var/lib/norm/kernels/initrd-6.1',
      root: '/dev/xvda',
      extra: 'ro console=hvc0',
      disk: ['format=raw, vdev=xvda, access=rw, target=/dev/vg0/web-1'],
      vif: ['mac=00:16:3e:5a:01:02,bridge=xenbr0'],
      on_poweroff: 'destroy',
      on_reboot: 'restart',
      on_crash: 'preserve',
    });
  });

  it('keeps hostile kernel arguments intact (quotes, backslashes, $(), #, ;, ])', () => {
    const extra = `a="b" c='d' e\\f $(reboot) \`id\` # not a comment ; x = 1 ] [ \\" \\\\`;
    const cfg = parseXlCfg(renderXlCfg(config({ boot: { kind: 'kernel', kernel: '/k', extra } })));
    expect(cfg.get('extra')).toBe(extra);
    expect(cfg.get('name')).toBe('web-1');
  });

  it('round-trips any printable extra (property)', () => {
    const printable = fc.string({ unit: 'grapheme', maxLength: 60 });
    const hostile = fc.constantFrom(
      '"',
      "'",
      '\\',
      '$(id)',
      '`',
      '#',
      ';',
      '[',
      ']',
      '=',
      ',',
      '\\"',
      "\\'",
      '\\\\',
    );
    const extra = fc
      .array(fc.oneof(printable, hostile), { maxLength: 12 })
      .map((parts) => parts.join(''))
      .filter(
        (s) => !hasControlCharacter(s) && Buffer.byteLength(`root=/dev/xvda ${s}`) <= MAX_CMDLINE_BYTES,
      );
    fc.assert(
      fc.property(extra, (e) => {
        const cfg = parseXlCfg(
          renderXlCfg(config({ boot: { kind: 'kernel', kernel: '/k', root: '/dev/xvda', extra: e } })),
        );
        expect(cfg.get('extra')).toBe(e);
        expect(cfg.get('root')).toBe('/dev/xvda');
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips any string through quoteXlCfgString, control characters included (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0')),
        fc.constantFrom<'"' | "'">('"', "'"),
        (s, quote) => {
          expect(parseXlCfg(`k = ${quoteXlCfgString(s, quote)}`).get('k')).toBe(s);
        },
      ),
      { numRuns: 150 },
    );
    // Generated binary strings are shrunk on failure and can be slow on a loaded machine.
  }, 30_000);

  it('enforces the 1023-byte command line, counting root= and UTF-8 bytes', () => {
    const fits = 'x'.repeat(MAX_CMDLINE_BYTES - 'root=/dev/xvda '.length);
    expect(() =>
      renderXlCfg(config({ boot: { kind: 'kernel', kernel: '/k', root: '/dev/xvda', extra: fits } })),
    ).not.toThrow();
    expect(() =>
      renderXlCfg(config({ boot: { kind: 'kernel', kernel: '/k', root: '/dev/xvda', extra: `${fits}x` } })),
    ).toThrow(unsafe);
    expect(() =>
      renderXlCfg(config({ boot: { kind: 'kernel', kernel: '/k', extra: 'é'.repeat(512) } })),
    ).toThrow(unsafe);
    expect(() =>
      renderXlCfg(config({ boot: { kind: 'kernel', kernel: '/k', extra: 'é'.repeat(511) } })),
    ).not.toThrow();
  });

  it.each([
    ['a newline in extra', { boot: { kind: 'kernel', kernel: '/k', extra: 'a\nname = "evil"' } }],
    ['a NUL in extra', { boot: { kind: 'kernel', kernel: '/k', extra: 'a\0b' } }],
    ['a tab in extra', { boot: { kind: 'kernel', kernel: '/k', extra: 'a\tb' } }],
    ['a space in root', { boot: { kind: 'kernel', kernel: '/k', root: '/dev/xvda init=/bin/sh' } }],
    ['a relative kernel', { boot: { kind: 'kernel', kernel: 'vmlinuz' } }],
    ['a ramdisk with ..', { boot: { kind: 'kernel', kernel: '/k', ramdisk: '/boot/../etc/shadow' } }],
    ['a bad name', { name: 'Web 1' }],
    ['a bad uuid', { uuid: 'not-a-uuid' }],
    ['zero memory', { memoryMb: 0 }],
    ['fractional vcpus', { vcpus: 1.5 }],
    ['too many vcpus', { vcpus: 100000 }],
    [
      'a disk target with a comma',
      { disks: [{ target: '/dev/vg0/a,b', vdev: 'xvda', access: 'rw' as const }] },
    ],
    [
      'a disk target with a quote',
      { disks: [{ target: "/dev/vg0/a'", vdev: 'xvda', access: 'rw' as const }] },
    ],
    ['a bad vdev', { disks: [{ target: '/dev/vg0/a', vdev: 'xvda,target=/etc', access: 'rw' as const }] }],
    [
      'a duplicated vdev',
      {
        disks: [
          { target: '/dev/vg0/a', vdev: 'xvda', access: 'rw' as const },
          { target: '/dev/vg0/b', vdev: 'xvda', access: 'rw' as const },
        ],
      },
    ],
    ['a multicast MAC', { vifs: [{ mac: '01:00:5e:00:00:01', bridge: 'xenbr0' }] }],
    ['a bad MAC', { vifs: [{ mac: '00:16:3e:00:00:01,bridge=evil', bridge: 'xenbr0' }] }],
    [
      'a duplicated MAC',
      {
        vifs: [
          { mac: '00:16:3e:00:00:01', bridge: 'xenbr0' },
          { mac: '00:16:3E:00:00:01', bridge: 'xenbr1' },
        ],
      },
    ],
    ['a bad bridge', { vifs: [{ mac: '00:16:3e:00:00:01', bridge: 'br0,script=/tmp/x' }] }],
    ['a bad ip', { vifs: [{ mac: '00:16:3e:00:00:01', bridge: 'xenbr0', ip: '10.0.0.999' }] }],
    ['an unknown action', { onCrash: 'coredump-destroy' as unknown as 'destroy' }],
  ])('refuses %s', (_what, over) => {
    expect(() => renderXlCfg(config(over as Partial<DomainConfig>))).toThrow(unsafe);
  });

  it('refuses NUL in quoteXlCfgString', () => {
    expect(() => quoteXlCfgString('a\0')).toThrow(unsafe);
  });
});
