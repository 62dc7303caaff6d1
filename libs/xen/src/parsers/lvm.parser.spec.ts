import { describe, expect, it } from 'vitest';
import { fixture } from './fixtures/load-fixture';
import { parseLvs, parseVgs } from './lvm.parser';

describe('parseVgs', () => {
  it('reads --noheadings rows with two leading spaces', () => {
    expect(parseVgs(fixture('vgs.txt'))).toEqual([
      { name: 'vg0', sizeMb: 953864, freeMb: 409600, pvCount: 1, lvCount: 12 },
      { name: 'vg_ssd', sizeMb: 476932, freeMb: 0, pvCount: 2, lvCount: 3 },
    ]);
  });

  it('accepts fractional, comma-decimal and `<`-rounded sizes', () => {
    expect(parseVgs('  vg0|<8188,50|12.25|1|0\n')).toEqual([
      { name: 'vg0', sizeMb: 8188.5, freeMb: 12.25, pvCount: 1, lvCount: 0 },
    ]);
  });

  it('returns nothing for empty output and skips warning lines', () => {
    expect(parseVgs('')).toEqual([]);
    expect(
      parseVgs('  WARNING: Not using lvmetad because config setting use_lvmetad=0.\n  vg0|10.00|5.00|1|1\n'),
    ).toHaveLength(1);
  });

  it('fails with ParseError on a row of the wrong shape', () => {
    expect(() => parseVgs('  vg0|10.00|5.00\n')).toThrow(expect.objectContaining({ code: 'ParseError' }));
    expect(() => parseVgs('  vg0|ten|5.00|1|1\n')).toThrow(/vg_size/);
  });
});

describe('parseLvs', () => {
  it('reads volumes, snapshots (origin) and empty origins', () => {
    expect(parseLvs(fixture('lvs.txt'))).toEqual([
      { vg: 'vg0', name: 'golden-debian12', sizeMb: 10240, attr: 'owi-a-s---' },
      { vg: 'vg0', name: 'web-1', sizeMb: 10240, origin: 'golden-debian12', attr: 'swi-aos---' },
      { vg: 'vg0', name: 'web-1-data', sizeMb: 51200, attr: '-wi-ao----' },
      { vg: 'vg_ssd', name: 'swap', sizeMb: 8188, attr: '-wi-a-----' },
    ]);
  });

  it('fails with ParseError on an empty name or a bad size', () => {
    expect(() => parseLvs('  vg0||10.00||-wi-a-----\n')).toThrow(
      expect.objectContaining({ code: 'ParseError' }),
    );
    expect(() => parseLvs('  vg0|x|10G||-wi-a-----\n')).toThrow(/lv_size/);
  });
});
