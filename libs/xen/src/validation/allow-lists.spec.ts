import { describe, expect, it } from 'vitest';
import {
  assertAbsolutePath,
  assertBridgeName,
  assertDomainName,
  assertIpv4,
  assertLvName,
  assertMac,
  assertPositiveInt,
  assertUuid,
  assertVgName,
  isDomainName,
} from './allow-lists';

function refusal(fn: () => void): { code: string; message: string; details: Record<string, unknown> } {
  try {
    fn();
  } catch (err) {
    return err as { code: string; message: string; details: Record<string, unknown> };
  }
  throw new Error('expected a refusal');
}

describe('assertDomainName', () => {
  it.each(['a', 'web-1', 'db01', 'x'.repeat(63), 'a1-b2-c3', '9lives'])('accepts %j', (v) => {
    expect(() => assertDomainName(v)).not.toThrow();
    expect(isDomainName(v)).toBe(true);
  });
  it.each([
    '',
    '-a',
    'a-',
    'Web',
    'Domain-0',
    'a_b',
    'a.b',
    'a b',
    'x'.repeat(64),
    '12',
    'a;b',
    '$(id)',
    'é',
    'a\n',
  ])('refuses %j', (v) => {
    const e = refusal(() => assertDomainName(v, 'cfg.name'));
    expect(e.code).toBe('UnsafeArgument');
    expect(e.message).toMatch(/^cfg\.name: /);
    expect(e.details.field).toBe('cfg.name');
    expect(isDomainName(v)).toBe(false);
  });
  it('refuses non-strings', () => {
    expect(refusal(() => assertDomainName(42)).code).toBe('UnsafeArgument');
  });
});

describe('LVM names', () => {
  it.each(['vg0', 'VG_data', 'a+b', 'x.y', 'web-1-root', 'x'.repeat(127), 'my_snapshot', 'disk.pvmove'])(
    'accepts LV %j',
    (v) => {
      expect(() => assertLvName(v)).not.toThrow();
    },
  );
  it.each([
    '',
    '-lv',
    '.',
    '..',
    'a/b',
    'a b',
    'x'.repeat(128),
    'snapshot',
    'snapshot1',
    'pvmove0',
    'data_tmeta',
    'x_rimage_0',
    'a:b',
    "a'b",
  ])('refuses LV %j', (v) => {
    expect(refusal(() => assertLvName(v)).code).toBe('UnsafeArgument');
  });
  it('applies the LV-only reservations to LVs, not VGs', () => {
    expect(() => assertVgName('snapshot')).not.toThrow();
    expect(() => assertVgName('-vg')).toThrow();
    expect(() => assertVgName('..')).toThrow();
    expect(() => assertVgName('vg/0')).toThrow();
  });
  it('says why', () => {
    expect(refusal(() => assertLvName('snapshotx')).message).toContain('reserved by LVM');
    expect(refusal(() => assertLvName('a_cdata')).message).toContain('_cdata');
  });
});

describe('assertAbsolutePath', () => {
  it.each(['/dev/vg0/web-1', '/etc/xen/norm/web-1.cfg', '/boot/vmlinuz-6.1.0+1', '/a'])('accepts %j', (v) => {
    expect(() => assertAbsolutePath(v)).not.toThrow();
  });
  it.each([
    '',
    '/',
    'dev/vg0',
    '/dev/../etc/shadow',
    '/dev/./x',
    '/dev//x',
    '/dev/x/',
    '/dev/x y',
    '/dev/$(id)',
    "/dev/x'",
    '/dev/x,y',
    '/dev/x\n',
    '/dev/é',
    `/${'a'.repeat(4096)}`,
  ])('refuses %j', (v) => {
    expect(refusal(() => assertAbsolutePath(v, 'kernel')).details.field).toBe('kernel');
  });
  it('does not echo overlong values in full', () => {
    const e = refusal(() => assertAbsolutePath(`relative${'x'.repeat(300)}`));
    expect(String(e.details.value).length).toBeLessThan(140);
  });
});

describe('assertMac', () => {
  it.each(['00:16:3e:00:00:01', '00:16:3E:7F:AB:CD', '02:00:00:00:00:01', 'aa:bb:cc:dd:ee:ff'])(
    'accepts %j',
    (v) => {
      expect(() => assertMac(v)).not.toThrow();
    },
  );
  it.each([
    '',
    '00:16:3e:00:00',
    '00-16-3e-00-00-01',
    '0016.3e00.0001',
    '01:00:5e:00:00:01',
    '00:00:00:00:00:00',
    'ff:ff:ff:ff:ff:ff',
    '00:16:3e:00:00:01,x',
    '00:16:3e:00:00:0g',
  ])('refuses %j', (v) => {
    expect(refusal(() => assertMac(v)).code).toBe('UnsafeArgument');
  });
});

describe('assertIpv4', () => {
  it.each(['10.0.0.1', '0.0.0.0', '255.255.255.255', '192.168.100.25'])('accepts %j', (v) => {
    expect(() => assertIpv4(v)).not.toThrow();
  });
  it.each([
    '',
    '10.0.0',
    '10.0.0.256',
    '10.0.0.01',
    '10.0.0.1/24',
    ' 10.0.0.1',
    '1.2.3.4.5',
    '::1',
    'a.b.c.d',
  ])('refuses %j', (v) => {
    expect(refusal(() => assertIpv4(v)).code).toBe('UnsafeArgument');
  });
});

describe('assertBridgeName', () => {
  it.each(['xenbr0', 'br-lan', 'br0.100', 'x'.repeat(15), 'virbr_1'])('accepts %j', (v) => {
    expect(() => assertBridgeName(v)).not.toThrow();
  });
  it.each(['', 'x'.repeat(16), '-br', '.br', 'br/0', 'br 0', 'br:0', 'br,0', 'br=0'])('refuses %j', (v) => {
    expect(refusal(() => assertBridgeName(v)).code).toBe('UnsafeArgument');
  });
});

describe('assertUuid and assertPositiveInt', () => {
  it('accepts canonical UUIDs only', () => {
    expect(() => assertUuid('6f1c2a4e-6b8d-4c2f-9a51-0e3b8d7c1a20')).not.toThrow();
    expect(() => assertUuid('6f1c2a4e6b8d4c2f9a510e3b8d7c1a20')).toThrow();
    expect(() => assertUuid('6f1c2a4e-6b8d-4c2f-9a51-0e3b8d7c1a2')).toThrow();
  });
  it('accepts positive safe integers within the bound', () => {
    expect(() => assertPositiveInt(1, 'vcpus')).not.toThrow();
    expect(() => assertPositiveInt(128, 'vcpus', 128)).not.toThrow();
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity, 129, '2']) {
      expect(() => assertPositiveInt(bad, 'vcpus', 128)).toThrow(
        expect.objectContaining({ code: 'UnsafeArgument' }),
      );
    }
  });
});
