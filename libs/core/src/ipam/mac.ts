/**
 * Xen's OUI is 00:16:3e. Xen's own tools draw the 4th octet from 00-7f (the upper half is
 * left to other tools), and the ip_allocations table checks exactly that pattern, so a MAC
 * from here is always one the database accepts.
 */
export const XEN_MAC_PREFIX = '00:16:3e';
export const XEN_MAC_PATTERN = /^00:16:3e:[0-7][0-9a-f]:[0-9a-f]{2}:[0-9a-f]{2}$/;

/** 2^23 addresses: 7 bits of the 4th octet plus the last two octets. */
export const XEN_MAC_SPACE = 0x80_0000;

/** `randomBytes` must return three uniformly random bytes (crypto.randomBytes in production). */
export function generateXenMac(randomBytes: (n: number) => Uint8Array): string {
  const bytes = randomBytes(3);
  const [a = 0, b = 0, c = 0] = bytes;
  return xenMacFromIndex(((a & 0x7f) << 16) | (b << 8) | c);
}

/** The MAC at position `index` (0 ≤ index < 2^23) in Xen's range. */
export function xenMacFromIndex(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= XEN_MAC_SPACE)
    throw new RangeError(`MAC index ${index}`);
  const hex = (v: number): string => v.toString(16).padStart(2, '0');
  return `${XEN_MAC_PREFIX}:${hex(index >>> 16)}:${hex((index >>> 8) & 255)}:${hex(index & 255)}`;
}

export function isXenMac(mac: string): boolean {
  return XEN_MAC_PATTERN.test(mac);
}
