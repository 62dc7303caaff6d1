import { DomainError, type NoCloudSeed } from '@norm/core';

/**
 * A minimal ISO 9660 (ECMA-119) image writer for NoCloud seed volumes: one root directory,
 * a handful of small files, nothing else. cloud-init's NoCloud datasource finds a file system
 * whose label (as blkid reports it) is `cidata` and reads `meta-data`, `user-data` and, when
 * present, `network-config` from its root. Written here because no npm package does it without
 * dragging in far more than this, and the hosts have no image builder Norm may rely on.
 *
 * Layout, in 2048-byte logical sectors (the only block size ISO 9660 readers all accept):
 *
 *   0-15   system area, zeros (reserved for boot code; an ISO reader skips it)
 *   16     primary volume descriptor (PVD): 8.3 upper-case names, what every reader sees
 *   17     Joliet supplementary volume descriptor (SVD): the same files under their real
 *          names in UCS-2, which Linux (and isoinfo -J) prefer, so `meta-data` reads as written
 *   18     volume descriptor set terminator: readers scan descriptors up to it
 *   19-22  path tables: PVD little- and big-endian, then Joliet's (each 10 bytes: the root only)
 *   23     PVD root directory
 *   24     Joliet root directory
 *   25-    file contents, each starting on its own sector; both directories point at them
 *
 * Multi-byte numbers in descriptors and directory records are mostly "both-endian" (the value
 * little-endian, then the same value big-endian), so a reader of either byte order can take
 * its half; path tables instead come in two copies, one per byte order.
 */

const SECTOR = 2048;
/** Sectors 0-15 are the system area; the descriptor set starts at 16 (ECMA-119 6.2.1, 8.1). */
const FIRST_DESCRIPTOR = 16;
const PVD_SECTOR = FIRST_DESCRIPTOR;
const SVD_SECTOR = FIRST_DESCRIPTOR + 1;
const TERMINATOR_SECTOR = FIRST_DESCRIPTOR + 2;
const PATH_L = FIRST_DESCRIPTOR + 3;
const PATH_M = FIRST_DESCRIPTOR + 4;
const JOLIET_PATH_L = FIRST_DESCRIPTOR + 5;
const JOLIET_PATH_M = FIRST_DESCRIPTOR + 6;
const ROOT_DIR = FIRST_DESCRIPTOR + 7;
const JOLIET_ROOT_DIR = FIRST_DESCRIPTOR + 8;
const FIRST_DATA = FIRST_DESCRIPTOR + 9;
/** A path table with only the root: 8 fixed bytes + a 1-byte identifier + 1 pad byte. */
const PATH_TABLE_BYTES = 10;

/** Joliet caps a name at 64 UCS-2 characters; Norm's names are short and plain. */
const FILE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** A volume id fits the 32-byte PVD field and the 16 UCS-2 characters of Joliet's. */
const VOLUME_ID = /^[A-Za-z0-9_]{1,16}$/;

export interface IsoFile {
  name: string;
  data: Buffer | string;
}

function both16(buf: Buffer, offset: number, value: number): void {
  buf.writeUInt16LE(value, offset);
  buf.writeUInt16BE(value, offset + 2);
}

function both32(buf: Buffer, offset: number, value: number): void {
  buf.writeUInt32LE(value, offset);
  buf.writeUInt32BE(value, offset + 4);
}

/** An identifier field of the PVD: ASCII, padded with spaces (ECMA-119 7.4). */
function ascii(buf: Buffer, offset: number, length: number, text: string): void {
  buf.fill(0x20, offset, offset + length);
  buf.write(text, offset, length, 'latin1');
}

/** Joliet text is UCS-2 big-endian; Node only has little-endian, so swap each pair. */
function ucs2be(text: string): Buffer {
  return Buffer.from(text, 'utf16le').swap16();
}

/** An identifier field of the Joliet SVD: UCS-2 BE, padded with UCS-2 spaces (00 20). */
function joliet(buf: Buffer, offset: number, length: number, text: string): void {
  for (let i = offset; i + 1 < offset + length; i += 2) buf.writeUInt16BE(0x0020, i);
  ucs2be(text).copy(buf, offset, 0, length - (length % 2));
}

/**
 * The PVD's level-1 name: upper-case d-characters, at most 8 + 3, version `;1` (ECMA-119
 * 7.5). `meta-data` becomes `META_DAT.;1`; a reader without Joliet shows that.
 */
function level1Name(name: string): { base: string; ext: string } {
  const dot = name.lastIndexOf('.');
  const clean = (s: string, max: number): string =>
    s
      .toUpperCase()
      .replace(/[^A-Z0-9_]/g, '_')
      .slice(0, max);
  return dot > 0
    ? { base: clean(name.slice(0, dot), 8), ext: clean(name.slice(dot + 1), 3) }
    : { base: clean(name, 8), ext: '' };
}

/**
 * A directory record (ECMA-119 9.1). The recording date is left all zeros, which 9.1.5
 * defines as "not specified": the same files give the same image, byte for byte.
 */
function directoryRecord(identifier: Buffer, extent: number, size: number, directory: boolean): Buffer {
  // The record's length must be even: a pad byte follows an even-length identifier.
  const length = 33 + identifier.length + (identifier.length % 2 === 0 ? 1 : 0);
  const r = Buffer.alloc(length);
  r[0] = length;
  r[1] = 0; // no extended attribute record
  both32(r, 2, extent);
  both32(r, 10, size);
  r[25] = directory ? 0x02 : 0x00; // file flags: bit 1 = directory
  both16(r, 28, 1); // volume sequence number: a one-volume set
  r[32] = identifier.length;
  identifier.copy(r, 33);
  return r;
}

/** One directory's sector: `.` (identifier 0x00), `..` (0x01; the root is its own parent), then the files. */
function directorySector(extent: number, records: Buffer[]): Buffer {
  const self = directoryRecord(Buffer.from([0]), extent, SECTOR, true);
  const parent = directoryRecord(Buffer.from([1]), extent, SECTOR, true);
  const all = Buffer.concat([self, parent, ...records]);
  // A record may not cross a sector boundary, and Norm never needs a second sector.
  if (all.length > SECTOR)
    throw new DomainError('ValidationFailed', 'too many files for a one-sector ISO 9660 directory', {
      files: records.length,
    });
  const sector = Buffer.alloc(SECTOR);
  all.copy(sector);
  return sector;
}

/** The root-only path table (ECMA-119 9.4), in one byte order; the extent is the root's. */
function pathTable(rootExtent: number, bigEndian: boolean): Buffer {
  const t = Buffer.alloc(SECTOR);
  t[0] = 1; // identifier length: the root's identifier is the single byte 0x00
  t[1] = 0; // no extended attribute record
  if (bigEndian) {
    t.writeUInt32BE(rootExtent, 2);
    t.writeUInt16BE(1, 6); // parent directory number: the root is entry 1 and its own parent
  } else {
    t.writeUInt32LE(rootExtent, 2);
    t.writeUInt16LE(1, 6);
  }
  t[8] = 0x00;
  return t;
}

/**
 * The PVD (type 1) or Joliet SVD (type 2): the same geometry, different names (ECMA-119
 * 8.4, 8.5). Fields not set here are zero, or spaces for identifiers, as "not specified".
 */
function volumeDescriptor(
  kind: 'primary' | 'joliet',
  volumeId: string,
  totalSectors: number,
  pathL: number,
  pathM: number,
  rootExtent: number,
): Buffer {
  const d = Buffer.alloc(SECTOR);
  const text = kind === 'primary' ? ascii : joliet;
  d[0] = kind === 'primary' ? 1 : 2;
  d.write('CD001', 1, 'latin1'); // standard identifier
  d[6] = 1; // descriptor version
  text(d, 8, 32, ''); // system identifier
  // The label blkid reports, and cloud-init looks for. genisoimage -V cidata writes it in
  // lower case too; libblkid prefers the Joliet copy when there is one.
  text(d, 40, 32, volumeId);
  both32(d, 80, totalSectors); // volume space size
  if (kind === 'joliet') d.write('%/E', 88, 'latin1'); // escape sequence: Joliet UCS-2 level 3
  both16(d, 120, 1); // volume set size
  both16(d, 124, 1); // volume sequence number
  both16(d, 128, SECTOR); // logical block size
  both32(d, 132, PATH_TABLE_BYTES); // path table size, in bytes
  d.writeUInt32LE(pathL, 140); // type L path table (optional copy at 144 left 0: none)
  d.writeUInt32BE(pathM, 148); // type M path table (optional copy at 152 left 0: none)
  directoryRecord(Buffer.from([0]), rootExtent, SECTOR, true).copy(d, 156); // root directory record
  text(d, 190, 128, ''); // volume set identifier
  text(d, 318, 128, ''); // publisher
  text(d, 446, 128, ''); // data preparer
  text(d, 574, 128, 'NORM NOCLOUD SEED'); // application: who wrote this image
  text(d, 702, 37, ''); // copyright file
  text(d, 739, 37, ''); // abstract file
  text(d, 776, 37, ''); // bibliographic file
  // Creation, modification, expiration and effective dates: sixteen '0' digits and a zero
  // time zone mean "not specified" (8.4.26.1), which keeps the image reproducible.
  for (const offset of [813, 830, 847, 864]) d.write('0'.repeat(16), offset, 'latin1');
  d[881] = 1; // file structure version
  return d;
}

/** Builds an ISO 9660 image with Joliet names holding `files` in its root directory. */
export function writeIso9660(volumeId: string, files: readonly IsoFile[]): Buffer {
  if (!VOLUME_ID.test(volumeId))
    throw new DomainError('ValidationFailed', 'an ISO 9660 volume id is 1-16 of A-Z, a-z, 0-9, _', {
      volumeId,
    });
  const seen = new Set<string>();
  for (const f of files) {
    if (!FILE_NAME.test(f.name) || f.name === '.' || f.name === '..')
      throw new DomainError('ValidationFailed', 'an ISO 9660 seed file name is 1-64 of A-Z, a-z, 0-9, ._-', {
        name: f.name,
      });
    const { base, ext } = level1Name(f.name);
    const key = `${base}.${ext}`;
    // Two names that fold to one 8.3 name would shadow each other for a reader without Joliet.
    if (seen.has(key))
      throw new DomainError('ValidationFailed', 'two seed files share an ISO 9660 8.3 name', {
        name: f.name,
      });
    seen.add(key);
  }

  const placed = files.map((f, i) => ({ ...f, data: Buffer.from(f.data), index: i, extent: 0 }));
  let next = FIRST_DATA;
  for (const f of placed) {
    f.extent = next;
    next += Math.ceil(f.data.length / SECTOR);
  }
  const totalSectors = next;

  // Records are sorted by identifier (ECMA-119 9.3): some readers binary-search a directory.
  // The 8.3 names compare base then extension, each as if padded with spaces.
  const pad = (s: string, n: number): string => s.padEnd(n, ' ');
  const primary = placed
    .map((f) => ({ f, n: level1Name(f.name) }))
    .sort((a, b) => {
      const x = pad(a.n.base, 8) + pad(a.n.ext, 3);
      const y = pad(b.n.base, 8) + pad(b.n.ext, 3);
      return x < y ? -1 : x > y ? 1 : 0;
    })
    .map(({ f, n }) =>
      directoryRecord(Buffer.from(`${n.base}.${n.ext};1`, 'latin1'), f.extent, f.data.length, false),
    );
  // Joliet names compare as UCS-2 code units, which is JavaScript's own string order. No
  // `;1` version: Joliet does not require one, and then no reader has to strip it.
  const jolietRecords = [...placed]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((f) => directoryRecord(ucs2be(f.name), f.extent, f.data.length, false));

  const image = Buffer.alloc(totalSectors * SECTOR);
  const put = (sector: number, data: Buffer): void => {
    data.copy(image, sector * SECTOR);
  };
  put(PVD_SECTOR, volumeDescriptor('primary', volumeId, totalSectors, PATH_L, PATH_M, ROOT_DIR));
  put(
    SVD_SECTOR,
    volumeDescriptor('joliet', volumeId, totalSectors, JOLIET_PATH_L, JOLIET_PATH_M, JOLIET_ROOT_DIR),
  );
  const terminator = Buffer.alloc(SECTOR);
  terminator[0] = 255;
  terminator.write('CD001', 1, 'latin1');
  terminator[6] = 1;
  put(TERMINATOR_SECTOR, terminator);
  put(PATH_L, pathTable(ROOT_DIR, false));
  put(PATH_M, pathTable(ROOT_DIR, true));
  put(JOLIET_PATH_L, pathTable(JOLIET_ROOT_DIR, false));
  put(JOLIET_PATH_M, pathTable(JOLIET_ROOT_DIR, true));
  put(ROOT_DIR, directorySector(ROOT_DIR, primary));
  put(JOLIET_ROOT_DIR, directorySector(JOLIET_ROOT_DIR, jolietRecords));
  for (const f of placed) put(f.extent, f.data);
  return image;
}

/** The volume label cloud-init's NoCloud datasource looks for. */
export const NOCLOUD_LABEL = 'cidata';

/** The seed volume for a NoCloud guest: `meta-data`, `user-data`, optional `network-config`. */
export function noCloudSeedIso(seed: NoCloudSeed): Buffer {
  return writeIso9660(NOCLOUD_LABEL, [
    { name: 'meta-data', data: seed.metaData },
    { name: 'user-data', data: seed.userData },
    ...(seed.networkConfig !== undefined ? [{ name: 'network-config', data: seed.networkConfig }] : []),
  ]);
}
