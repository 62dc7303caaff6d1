import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isDomainError } from '@norm/core';
import { noCloudSeedIso, writeIso9660 } from './nocloud-seed';

/**
 * The writer is checked by independent readers, Debian's `blkid` (libblkid: what cloud-init
 * asks to find the `cidata` label), `isoinfo` (genisoimage) and `xorriso` (libisofs), all
 * installed by scripts/bootstrap. Loop-mounting is not used: it needs the isofs module, which
 * a container may not have.
 */
const dir = mkdtempSync(join(tmpdir(), 'norm-seed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function saved(image: Buffer): string {
  const path = join(dir, `seed-${n++}.iso`);
  writeFileSync(path, image);
  return path;
}
const run = (cmd: string, args: string[]): string =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const runBytes = (cmd: string, args: string[]): Buffer =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 * 1024 * 1024 });

const META = 'instance-id: 6f1c2a9e-8d4b-4c3a-9e2f-1a2b3c4d5e6f\nlocal-hostname: web-1\n';
// Longer than a sector, so the extent arithmetic and the sector padding are exercised too.
const USER = `#cloud-config\n# ${'é ü 日本 '.repeat(400)}\nwrite_files: []\n`;
const NET = 'version: 2\nethernets: {}\n';
const seed = { metaData: META, userData: USER, networkConfig: NET };

describe('ISO 9660 seed writer, read back by real tools', () => {
  const image = noCloudSeedIso(seed);
  const path = saved(image);

  it('is an iso9660 file system labelled cidata for blkid (what cloud-init searches by)', () => {
    const out = run('blkid', ['-p', path]);
    expect(out).toContain('TYPE="iso9660"');
    expect(out).toContain('LABEL="cidata"');
    expect(out).toContain('VERSION="Joliet Extension"');
  });

  it('has whole 2048-byte sectors, and the volume size isoinfo reads is the file size', () => {
    expect(image.length % 2048).toBe(0);
    const info = run('isoinfo', ['-d', '-i', path]);
    expect(info).toMatch(/^Volume id: cidata$/m);
    expect(info).toMatch(/^Logical block size is: 2048$/m);
    expect(info).toMatch(new RegExp(`^Volume size is: ${image.length / 2048}$`, 'm'));
    expect(info).toMatch(/Joliet with UCS level 3 found/);
  });

  it('lists the three files under their own names through Joliet', () => {
    const listing = run('isoinfo', ['-J', '-l', '-i', path]);
    const names = listing
      .split('\n')
      .map((l) => /\]\s+(\S+)\s*$/.exec(l)?.[1])
      .filter((x): x is string => x !== undefined && x !== '.' && x !== '..');
    expect(names.sort()).toEqual(['meta-data', 'network-config', 'user-data']);
  });

  it('returns each file byte for byte', () => {
    for (const [name, text] of [
      ['meta-data', META],
      ['user-data', USER],
      ['network-config', NET],
    ] as const) {
      expect(runBytes('isoinfo', ['-J', '-x', `/${name}`, '-i', path]).equals(Buffer.from(text)), name).toBe(
        true,
      );
    }
  });

  it('gives a reader without Joliet the 8.3 names of the primary descriptor', () => {
    const listing = run('isoinfo', ['-l', '-i', path]);
    expect(listing).toContain('META_DAT.;1');
    expect(listing).toContain('USER_DAT.;1');
    expect(listing).toContain('NETWORK_.;1');
    expect(runBytes('isoinfo', ['-x', '/META_DAT.;1', '-i', path]).toString('utf8')).toBe(META);
  });

  it('is read by xorriso (libisofs), names and contents', () => {
    const found = run('xorriso', ['-indev', path, '-find', '/', '-type', 'f']);
    expect(found).toContain("'/meta-data'");
    expect(found).toContain("'/user-data'");
    expect(found).toContain("'/network-config'");
    const out = join(dir, 'xorriso-user-data');
    run('xorriso', ['-osirrox', 'on', '-indev', path, '-extract', '/user-data', out]);
    expect(readFileSync(out).equals(Buffer.from(USER))).toBe(true);
  });

  it('passes isovfy, the structure checker of the genisoimage package', () => {
    expect(run('isovfy', [path])).toMatch(/No errors found\s*$/);
  });

  it('writes both-endian fields as the same value twice, and both path tables', () => {
    const pvd = image.subarray(16 * 2048, 17 * 2048);
    const svd = image.subarray(17 * 2048, 18 * 2048);
    for (const d of [pvd, svd]) {
      // volume space size, block size, path table size: LE then BE of one value.
      expect(d.readUInt32BE(84)).toBe(d.readUInt32LE(80));
      expect(d.readUInt32LE(80)).toBe(image.length / 2048);
      expect(d.readUInt16BE(130)).toBe(2048);
      expect(d.readUInt16LE(128)).toBe(2048);
      expect(d.readUInt32BE(136)).toBe(d.readUInt32LE(132));
      // The root directory record's extent and size, both-endian.
      expect(d.readUInt32BE(156 + 6)).toBe(d.readUInt32LE(156 + 2));
      expect(d.readUInt32BE(156 + 14)).toBe(d.readUInt32LE(156 + 10));
      // Type L and type M path tables name the same root extent in their own byte order.
      const l = image.subarray(d.readUInt32LE(140) * 2048);
      const m = image.subarray(d.readUInt32BE(148) * 2048);
      expect(l.readUInt32LE(2)).toBe(d.readUInt32LE(156 + 2));
      expect(m.readUInt32BE(2)).toBe(d.readUInt32LE(156 + 2));
    }
    expect(image.subarray(18 * 2048, 18 * 2048 + 7)).toEqual(Buffer.from([255, ...Buffer.from('CD001'), 1]));
  });

  it('leaves network-config out when there is none, and gives the same bytes for the same files', () => {
    const without = saved(noCloudSeedIso({ metaData: META, userData: USER }));
    expect(run('isoinfo', ['-J', '-l', '-i', without])).not.toContain('network-config');
    expect(noCloudSeedIso(seed).equals(image)).toBe(true);
  });

  it('stores an empty file and many sectors of a larger one', () => {
    const big = Buffer.alloc(5 * 2048 + 7, 0xa5);
    const path2 = saved(
      writeIso9660('cidata', [
        { name: 'empty', data: '' },
        { name: 'big.bin', data: big },
      ]),
    );
    expect(runBytes('isoinfo', ['-J', '-x', '/big.bin', '-i', path2]).equals(big)).toBe(true);
    expect(runBytes('isoinfo', ['-J', '-x', '/empty', '-i', path2])).toHaveLength(0);
  });

  it('refuses names it cannot write, and names that fold to one 8.3 name', () => {
    const code = (f: () => unknown): unknown => {
      try {
        f();
      } catch (err) {
        return isDomainError(err) && err.code;
      }
      return 'no error';
    };
    expect(code(() => writeIso9660('cidata', [{ name: 'a/b', data: '' }]))).toBe('ValidationFailed');
    expect(code(() => writeIso9660('ci data', []))).toBe('ValidationFailed');
    expect(
      code(() =>
        writeIso9660('cidata', [
          { name: 'user-data', data: '' },
          { name: 'user_data', data: '' },
        ]),
      ),
    ).toBe('ValidationFailed');
  });
});
