import { describe, expect, it } from 'vitest';
import { fixture } from './fixtures/load-fixture';
import { parseXlInfo } from './xl-info.parser';

describe('parseXlInfo', () => {
  it('reads Xen 4.1 (integer cpu_mhz, no xen_version/max_cpu_id/claims/build_id)', () => {
    const info = parseXlInfo(fixture('xl-info-4.1.txt'));
    expect(info).toMatchObject({
      host: 'xen01',
      machine: 'x86_64',
      nrCpus: 8,
      cpuMhz: 2400,
      virtCaps: ['hvm', 'hvm_directio'],
      totalMemoryMb: 16374,
      freeMemoryMb: 14210,
      xenMajor: 4,
      xenMinor: 1,
      xenExtra: '.2',
      xenVersion: '4.1.2',
      xenScheduler: 'credit',
      xenCommandline: 'dom0_mem=1024M',
    });
    expect(info.outstandingClaimsMb).toBeUndefined();
    expect(info.buildId).toBeUndefined();
    expect(info.raw.xen_version).toBeUndefined();
    expect(info.raw.xen_changeset).toBe('unavailable');
  });

  it('reads a CentOS 4.4 build (xen_version printed, RPM release in xen_extra, empty changeset)', () => {
    const info = parseXlInfo(fixture('xl-info-4.4-centos6.txt'));
    expect(info).toMatchObject({
      nrCpus: 16,
      coresPerSocket: 8,
      threadsPerCore: 2,
      xenExtra: '.1-7.el6',
      xenVersion: '4.4.1-7.el6',
      outstandingClaimsMb: 0,
    });
    expect(info.raw.xen_changeset).toBe('');
    expect(info.raw.cc_compile_domain).toBe('centos.org');
    expect(info.buildId).toBeUndefined();
  });

  it('reads 4.11 (%d.%03d cpu_mhz, build_id) and trims the trailing space of xen_caps', () => {
    const info = parseXlInfo(fixture('xl-info-4.11.txt'));
    expect(info.cpuMhz).toBeCloseTo(2394.458, 3);
    expect(info.buildId).toBe('d5d86cbb0a1c4ed5c8bd2a7c3b2f6f2f04a0c1e2');
    expect(info.raw.xen_caps).toBe('xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64');
    expect(info.xenVersion).toBe('4.11.4');
  });

  it('reads an Arm 4.13 host with an empty virt_caps (no trailing space) and a 50-ish MHz timer', () => {
    const text = fixture('xl-info-4.13-arm.txt');
    expect(text).toContain('virt_caps              :\n');
    const info = parseXlInfo(text);
    expect(info.virtCaps).toEqual([]);
    expect(info.machine).toBe('aarch64');
    expect(info.cpuMhz).toBe(54);
    expect(info.raw.cc_compiler).toHaveLength(63);
  });

  it.each([
    ['xl-info-4.17.txt', '4.17.6-pre', 11],
    ['xl-info-4.20.txt', '4.20.0', 12],
    ['xl-info-4.21.txt', '4.21.0', 11],
  ])('reads %s', (file, version, caps) => {
    const info = parseXlInfo(fixture(file));
    expect(info.xenVersion).toBe(version);
    expect(info.virtCaps.length).toBeGreaterThanOrEqual(caps - 1);
    expect(info.virtCaps).toContain('gnttab-v2');
    expect(info.xenScheduler).toBe('credit2');
  });

  it('keeps an empty xen_commandline as an empty string', () => {
    expect(parseXlInfo(fixture('xl-info-4.20.txt')).xenCommandline).toBe('');
  });

  it('keeps every key in raw, trimmed, including values with colons and double spaces', () => {
    const info = parseXlInfo(fixture('xl-info-4.17.txt'));
    expect(info.raw.hw_caps).toBe('178bfbff:f6d8320b:2e500800:244037ff:0000000f:219c01ab:0040069c:00000000');
    expect(info.raw.cc_compile_date).toBe('Tue Aug  5 12:00:00 UTC 2025');
    expect(info.raw.xend_config_format).toBe('4');
    expect(Object.keys(info.raw)).toHaveLength(34);
  });

  it('skips banners and warnings around the block, and accepts CRLF and no trailing newline', () => {
    const text =
      'Welcome to xenlab!\r\nLast login: Mon Nov 24 10:00:00 2025 from 10.0.0.1\r\n' +
      'Failed to read config file: /etc/xen/xl.conf: No such file or directory\r\n' +
      fixture('xl-info-4.17.txt').replace(/\n/g, '\r\n').trimEnd();
    const info = parseXlInfo(text);
    expect(info.host).toBe('xenlab');
    expect(info.totalMemoryMb).toBe(32562);
    expect(info.raw.xend_config_format).toBe('4');
  });

  it('derives xen_version when the key is absent and tolerates missing optional keys', () => {
    const text = [
      'host : h',
      'nr_cpus : 2',
      'total_memory : 100',
      'free_memory : 50',
      'xen_major : 4',
      'xen_minor : 3',
    ].join('\n');
    const info = parseXlInfo(text);
    expect(info.xenVersion).toBe('4.3');
    expect(info.xenExtra).toBe('');
    expect(info.virtCaps).toEqual([]);
    expect(info.cpuMhz).toBeUndefined();
  });

  it('fails with ParseError when no xl info keys are present', () => {
    expect(() => parseXlInfo('')).toThrow(expect.objectContaining({ code: 'ParseError' }));
    expect(() => parseXlInfo('bash: xl: command not found\n')).toThrow(/no xl info keys/);
  });

  it('fails with ParseError naming required keys that are missing or unreadable', () => {
    const partial = fixture('xl-info-4.17.txt').replace(/^free_memory.*\n/m, '');
    expect(() => parseXlInfo(partial)).toThrow(/missing keys: free_memory/);
    const bad = fixture('xl-info-4.17.txt').replace(/^nr_cpus.*$/m, 'nr_cpus                : many');
    expect(() => parseXlInfo(bad)).toThrow(
      expect.objectContaining({
        code: 'ParseError',
        message: expect.stringContaining('nr_cpus') as unknown,
      }) as Error,
    );
  });
});
