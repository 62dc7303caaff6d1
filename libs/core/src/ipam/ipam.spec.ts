import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationFailed } from '../errors';
import { formatIpv4, parseCidr, parseIpv4, rangeSize, validateNetworkRange } from './ipv4';
import { generateXenMac, isXenMac, XEN_MAC_SPACE, xenMacFromIndex } from './mac';

describe('IPv4 helpers', () => {
  it('round-trips every address', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (v) => {
        expect(parseIpv4(formatIpv4(v))).toBe(v);
      }),
    );
  });
  it('rejects malformed addresses and CIDRs with host bits', () => {
    for (const bad of ['1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', 'a.b.c.d', ''])
      expect(parseIpv4(bad)).toBeUndefined();
    expect(parseCidr('10.0.0.1/24')).toBeUndefined();
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
    expect(parseCidr('10.0.0.0/24')).toEqual({
      network: parseIpv4('10.0.0.0'),
      prefix: 24,
      last: parseIpv4('10.0.0.255'),
    });
  });
});

describe('rangeSize', () => {
  it('sizes ranges', () => {
    expect(rangeSize('10.0.0.10', '10.0.0.19')).toBe(10);
    expect(rangeSize('10.0.0.19', '10.0.0.10')).toBe(0);
  });
});

describe('validateNetworkRange', () => {
  const good = {
    cidr: '192.168.10.0/24',
    gateway: '192.168.10.1',
    rangeStart: '192.168.10.10',
    rangeEnd: '192.168.10.200',
  };
  const fields = (n: Parameters<typeof validateNetworkRange>[0]): string[] => {
    try {
      validateNetworkRange(n);
      return [];
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationFailed);
      return (err as ValidationFailed).issues.map((i) => i.path);
    }
  };
  it('accepts a sane network, with or without gateway', () => {
    expect(fields(good)).toEqual([]);
    expect(fields({ ...good, gateway: null })).toEqual([]);
  });
  it('names the field at fault', () => {
    expect(fields({ ...good, cidr: '192.168.10.5/24' })).toEqual(['cidr']);
    expect(fields({ ...good, gateway: '192.168.10.254', rangeStart: '192.168.9.10' })).toEqual([
      'rangeStart',
    ]);
    expect(fields({ ...good, gateway: '192.168.10.254', rangeStart: '192.168.10.0' })).toEqual([
      'rangeStart',
    ]);
    expect(fields({ ...good, rangeEnd: '192.168.10.255' })).toEqual(['rangeEnd']);
    expect(fields({ ...good, rangeEnd: '192.168.10.5' })).toEqual(['rangeEnd']);
    expect(fields({ ...good, gateway: '192.168.10.50' })).toEqual(['gateway']);
    expect(fields({ ...good, gateway: '10.0.0.1' })).toEqual(['gateway']);
    expect(fields({ ...good, gateway: 'nope' })).toEqual(['gateway']);
  });
});

describe('Xen MACs', () => {
  it('stays under 00:16:3e with the 4th octet 00-7f, for any random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 3, maxLength: 3 }), (bytes) => {
        const mac = generateXenMac(() => bytes);
        expect(isXenMac(mac)).toBe(true);
        expect(parseInt(mac.split(':')[3] ?? 'zz', 16)).toBeLessThanOrEqual(0x7f);
      }),
    );
    for (let i = 0; i < 1000; i++) expect(isXenMac(generateXenMac(randomBytes))).toBe(true);
  });
  it('maps indices to distinct MACs across the whole space', () => {
    expect(xenMacFromIndex(0)).toBe('00:16:3e:00:00:00');
    expect(xenMacFromIndex(XEN_MAC_SPACE - 1)).toBe('00:16:3e:7f:ff:ff');
    expect(() => xenMacFromIndex(XEN_MAC_SPACE)).toThrow(RangeError);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: XEN_MAC_SPACE - 1 }),
        fc.integer({ min: 0, max: XEN_MAC_SPACE - 1 }),
        (a, b) => {
          expect(xenMacFromIndex(a) === xenMacFromIndex(b)).toBe(a === b);
        },
      ),
    );
  });
});
