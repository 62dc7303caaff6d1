import { describe, expect, it } from 'vitest';
import { fixture } from './fixtures/load-fixture';
import { parseXlListLong } from './xl-list-long.parser';

describe('parseXlListLong', () => {
  it('reads the 4.4 layout ("u" union, every field, Domain-0 absent)', () => {
    const domains = parseXlListLong(fixture('xl-list-l-4.4.json.txt'));
    expect(domains.map((d) => d.name)).toEqual(['mail', 'build']);
    expect(domains[0]).toEqual({
      domid: 5,
      name: 'mail',
      uuid: '5e0b1f5a-8c1e-4f0a-9b2d-3c4e5f607182',
      type: 'pv',
      maxVcpus: 1,
      maxMemoryKb: 1048576,
      targetMemoryKb: 1048576,
      kernel: '/boot/vmlinuz-3.10.0-el7',
      ramdisk: '/boot/initramfs-3.10.0-el7.img',
      cmdline: 'root=/dev/xvda1 ro console=hvc0',
      disks: [
        { target: '/dev/vg_xen/mail-root', vdev: 'xvda', format: 'raw', backend: 'phy', readwrite: true },
        { target: '/srv/iso/tools.iso', vdev: 'xvdb', format: 'raw', backend: 'phy', readwrite: false },
      ],
      nics: [{ mac: '00:16:3e:12:34:56', bridge: 'xenbr0', devid: 0 }],
    });
    expect(domains[1]).toMatchObject({
      bootloader: '/usr/bin/pygrub',
      nics: [{ mac: '00:16:3e:00:ab:cd', ip: '10.1.2.3' }],
    });
    expect(domains[1]?.kernel).toBeUndefined();
  });

  it('reads an empty 4.4 list (only Domain-0 running)', () => {
    expect(parseXlListLong(fixture('xl-list-l-4.4-empty.json.txt'))).toEqual([]);
  });

  it('reads 4.8 (bootloader inside "type.pv", Domain-0 included, defaults omitted)', () => {
    const [dom0, legacy] = parseXlListLong(fixture('xl-list-l-4.8.json.txt'));
    expect(dom0).toMatchObject({ domid: 0, name: 'Domain-0', type: 'pv', maxVcpus: 4, disks: [], nics: [] });
    expect(dom0?.uuid).toBeUndefined();
    expect(legacy).toMatchObject({
      bootloader: 'pygrub',
      disks: [{ target: '/dev/vg0/legacy', readwrite: true }],
    });
  });

  it('reads 4.11 (kernel, cmdline, ramdisk at b_info top level)', () => {
    const [, web] = parseXlListLong(fixture('xl-list-l-4.11.json.txt'));
    expect(web).toMatchObject({
      domid: 4,
      kernel: '/var/lib/norm/kernels/vmlinuz-6.1',
      ramdisk: '/var/lib/norm/kernels/initrd-6.1',
      cmdline: 'root=/dev/xvda ro console=hvc0',
      nics: [{ mac: '00:16:3e:5a:01:02', bridge: 'xenbr0', ip: '192.168.10.21', devid: 0 }],
    });
  });

  it('reads 4.17 (domid twice, an HVM guest, an omitted readwrite)', () => {
    const domains = parseXlListLong(fixture('xl-list-l-4.17.json.txt'));
    expect(domains.map((d) => [d.domid, d.name, d.type])).toEqual([
      [0, 'Domain-0', 'pv'],
      [3, 'web-1', 'pv'],
      [7, 'win', 'hvm'],
    ]);
    expect(domains[1]?.disks[1]).toEqual({
      target: '/dev/vg0/web-1-data',
      vdev: 'xvdb',
      format: 'raw',
      backend: 'phy',
    });
    expect(domains[2]?.disks[0]?.backend).toBe('qdisk');
  });

  it('reads 4.20 with a stderr warning before the JSON', () => {
    const domains = parseXlListLong(fixture('xl-list-l-4.20.json.txt'));
    expect(domains.map((d) => [d.name, d.type])).toEqual([
      ['Domain-0', 'pv'],
      ['ci-runner-3', 'pvh'],
    ]);
  });

  it('reads the 4.21 json-c layout (2-space indent, no space after colon, escaped slashes)', () => {
    const text = fixture('xl-list-l-4.21.json.txt');
    expect(text).toContain('"pdev_path":"\\/dev\\/vg0\\/web-1"');
    const [, web] = parseXlListLong(text);
    expect(web).toMatchObject({
      kernel: '/var/lib/norm/kernels/vmlinuz-6.12',
      disks: [{ target: '/dev/vg0/web-1' }],
    });
  });

  it('accepts the bare config of `xl create -n` and derives the type from the union key', () => {
    const text = JSON.stringify([{ c_info: { name: 'x', domid: 4 }, b_info: { 'type.pvh': {} } }]);
    expect(parseXlListLong(text)).toEqual([{ domid: 4, name: 'x', type: 'pvh', disks: [], nics: [] }]);
  });

  it('skips entries without a domid or a name instead of guessing', () => {
    const text = JSON.stringify([
      { domid: null, config: { c_info: { name: 'x' } } },
      42,
      { domid: 3, config: {} },
    ]);
    expect(parseXlListLong(text)).toEqual([]);
  });

  it('fails with ParseError on output that is not a JSON array', () => {
    expect(() => parseXlListLong('')).toThrow(expect.objectContaining({ code: 'ParseError' }));
    expect(() => parseXlListLong('[\n    {\n        "domid": 1,\n')).toThrow(/invalid JSON/);
    expect(() => parseXlListLong('(domain\n\t(domid 1)\n)\n')).toThrow(/S-expression/);
  });
});
