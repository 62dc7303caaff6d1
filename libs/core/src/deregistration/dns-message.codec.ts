import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Just enough of the DNS wire format (RFC 1035) for RFC 2136 dynamic updates signed with
 * TSIG (RFC 8945): build a message, sign it, read a response's header and verify its TSIG.
 * Written here rather than taken from dns-packet, which neither signs with TSIG nor encodes
 * the empty-RDATA records (class ANY/NONE) that an update's prerequisites and deletes are.
 */

export const DNS_TYPE = { A: 1, SOA: 6, PTR: 12, AAAA: 28, TSIG: 250 } as const;
export const DNS_CLASS = { IN: 1, NONE: 254, ANY: 255 } as const;
export const DNS_OPCODE = { QUERY: 0, UPDATE: 5 } as const;

/** RCODEs (RFC 1035, 2136) and TSIG errors (RFC 8945), for messages an operator can act on. */
export const DNS_RCODE_NAMES: Readonly<Record<number, string>> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  6: 'YXDOMAIN',
  7: 'YXRRSET',
  8: 'NXRRSET',
  9: 'NOTAUTH',
  10: 'NOTZONE',
  16: 'BADSIG',
  17: 'BADKEY',
  18: 'BADTIME',
  22: 'BADTRUNC',
};

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  rdata: Buffer;
}

/** In an UPDATE the four sections are zone, prerequisite, update and additional (RFC 2136 §2). */
export interface DnsMessage {
  id: number;
  opcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
}

/** Uncompressed wire form of a domain name; lower-cased, which TSIG's canonical form needs anyway. */
export function encodeName(name: string): Buffer {
  const trimmed = name.replace(/\.$/, '').toLowerCase();
  const labels = trimmed === '' ? [] : trimmed.split('.');
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, 'ascii');
    if (bytes.length === 0 || bytes.length > 63) throw new Error(`"${name}" has an empty or over-long label`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  const wire = Buffer.concat(parts);
  if (wire.length > 255) throw new Error(`"${name}" is longer than 255 octets`);
  return wire;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** TSIG's 48-bit "time signed". */
function u48(n: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(n, 0, 6);
  return b;
}

function encodeRecord(r: DnsRecord): Buffer {
  return Buffer.concat([
    encodeName(r.name),
    u16(r.type),
    u16(r.class),
    u32(r.ttl),
    u16(r.rdata.length),
    r.rdata,
  ]);
}

export function encodeMessage(m: DnsMessage): Buffer {
  // No flags besides the opcode: not a response, no recursion wanted (an update goes to the primary).
  const header = Buffer.concat([
    u16(m.id),
    u16((m.opcode & 0xf) << 11),
    u16(m.questions.length),
    u16(m.answers.length),
    u16(m.authorities.length),
    u16(0),
  ]);
  return Buffer.concat([
    header,
    ...m.questions.map((q) => Buffer.concat([encodeName(q.name), u16(q.type), u16(q.class)])),
    ...m.answers.map(encodeRecord),
    ...m.authorities.map(encodeRecord),
  ]);
}

export interface TsigKey {
  name: string;
  /** Only HMAC-SHA256 is spoken; the algorithm name travels in every signature. */
  algorithm: 'hmac-sha256';
  secret: Buffer;
}

/** The servers' clocks may differ from ours by this much (RFC 8945 recommends 300 s). */
const FUDGE_S = 300;

/** The TSIG variables that follow the message in the MAC input (RFC 8945 §4.3.3). */
function tsigVariables(
  key: TsigKey,
  timeSigned: number,
  fudge: number,
  error: number,
  other: Buffer,
): Buffer {
  return Buffer.concat([
    encodeName(key.name),
    u16(DNS_CLASS.ANY),
    u32(0),
    encodeName(key.algorithm),
    u48(timeSigned),
    u16(fudge),
    u16(error),
    u16(other.length),
    other,
  ]);
}

function hmac(key: TsigKey, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key.secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * Appends a TSIG record to an encoded message: the MAC covers the message as sent without
 * the TSIG record, then the TSIG variables. Returns the MAC, which the response's MAC covers.
 */
export function signMessage(
  message: Buffer,
  key: TsigKey,
  timeSigned: number,
): { message: Buffer; mac: Buffer } {
  const mac = hmac(key, message, tsigVariables(key, timeSigned, FUDGE_S, 0, Buffer.alloc(0)));
  const rdata = Buffer.concat([
    encodeName(key.algorithm),
    u48(timeSigned),
    u16(FUDGE_S),
    u16(mac.length),
    mac,
    message.subarray(0, 2),
    u16(0),
    u16(0),
  ]);
  const signed = Buffer.concat([
    message,
    encodeRecord({ name: key.name, type: DNS_TYPE.TSIG, class: DNS_CLASS.ANY, ttl: 0, rdata }),
  ]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { message: signed, mac };
}

export interface ParsedTsig {
  /** Where the TSIG record starts: the MAC covers everything before it. */
  offset: number;
  keyName: string;
  algorithm: string;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  other: Buffer;
}

export interface ParsedResponse {
  id: number;
  isResponse: boolean;
  opcode: number;
  rcode: number;
  tsig: ParsedTsig | null;
}

/** Reads a possibly compressed name; returns it and the offset just after it in the record. */
function readName(buf: Buffer, start: number): { name: string; next: number } {
  const labels: string[] = [];
  let at = start;
  let next: number | null = null;
  for (let hops = 0; hops < 128; hops++) {
    const len = buf.readUInt8(at);
    if (len === 0) return { name: labels.join('.'), next: next ?? at + 1 };
    if ((len & 0xc0) === 0xc0) {
      next ??= at + 2;
      at = buf.readUInt16BE(at) & 0x3fff;
      continue;
    }
    if (at + 1 + len > buf.length) throw new Error('truncated name');
    labels.push(buf.toString('ascii', at + 1, at + 1 + len).toLowerCase());
    at += 1 + len;
  }
  throw new Error('name compression loop');
}

/** Header, and the TSIG record if the last additional record is one; the rest is skipped. */
export function parseResponse(buf: Buffer): ParsedResponse {
  if (buf.length < 12) throw new Error(`a ${buf.length}-byte DNS message is shorter than its header`);
  const flags = buf.readUInt16BE(2);
  const counts = [4, 6, 8, 10].map((o) => buf.readUInt16BE(o)) as [number, number, number, number];
  let at = 12;
  for (let i = 0; i < counts[0]; i++) at = readName(buf, at).next + 4;
  const records = counts[1] + counts[2] + counts[3];
  let tsig: ParsedTsig | null = null;
  for (let i = 0; i < records; i++) {
    const start = at;
    const owner = readName(buf, at);
    at = owner.next;
    const type = buf.readUInt16BE(at);
    const rdlength = buf.readUInt16BE(at + 8);
    const rdata = at + 10;
    at = rdata + rdlength;
    if (at > buf.length) throw new Error('truncated record');
    if (type === DNS_TYPE.TSIG && i === records - 1 && counts[3] > 0) {
      const alg = readName(buf, rdata);
      let p = alg.next;
      const timeSigned = buf.readUIntBE(p, 6);
      const fudge = buf.readUInt16BE(p + 6);
      const macSize = buf.readUInt16BE(p + 8);
      const mac = buf.subarray(p + 10, p + 10 + macSize);
      p += 10 + macSize;
      const otherLen = buf.readUInt16BE(p + 4);
      tsig = {
        offset: start,
        keyName: owner.name,
        algorithm: alg.name,
        timeSigned,
        fudge,
        mac,
        originalId: buf.readUInt16BE(p),
        error: buf.readUInt16BE(p + 2),
        other: buf.subarray(p + 6, p + 6 + otherLen),
      };
    }
  }
  return {
    id: buf.readUInt16BE(0),
    isResponse: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    rcode: flags & 0xf,
    tsig,
  };
}

/**
 * Checks a response's TSIG against the request's MAC (RFC 8945 §5.3): a forged or altered
 * answer must not make Norm believe records were removed. Returns why it fails, or null.
 */
export function verifyResponse(
  buf: Buffer,
  parsed: ParsedResponse,
  requestMac: Buffer,
  key: TsigKey,
  nowS: number,
): string | null {
  const t = parsed.tsig;
  if (!t) return 'the response is not signed';
  if (t.keyName !== encodeNameText(key.name) || t.algorithm !== key.algorithm)
    return `the response is signed with ${t.algorithm} key "${t.keyName}", not ours`;
  const unsigned = Buffer.from(buf.subarray(0, t.offset));
  unsigned.writeUInt16BE(t.originalId, 0);
  unsigned.writeUInt16BE(unsigned.readUInt16BE(10) - 1, 10);
  const expected = hmac(
    key,
    u16(requestMac.length),
    requestMac,
    unsigned,
    tsigVariables(key, t.timeSigned, t.fudge, t.error, t.other),
  );
  if (t.mac.length !== expected.length || !timingSafeEqual(t.mac, expected))
    return "the response's TSIG signature does not verify";
  if (Math.abs(nowS - t.timeSigned) > t.fudge)
    return 'the response was signed outside the allowed clock skew';
  return null;
}

/** A name as `readName` returns it: lower case, no trailing dot. */
function encodeNameText(name: string): string {
  return name.replace(/\.$/, '').toLowerCase();
}

/** RDATA of an A or AAAA record. */
export function addressRdata(ip: string): { type: number; rdata: Buffer } {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) {
    const octets = ip.split('.').map(Number);
    if (octets.some((o) => o > 255)) throw new Error(`"${ip}" is not an IPv4 address`);
    return { type: DNS_TYPE.A, rdata: Buffer.from(octets) };
  }
  return { type: DNS_TYPE.AAAA, rdata: Buffer.from(expandIpv6(ip).join(''), 'hex') };
}

/** The eight groups of an IPv6 address as four hex digits each. */
function expandIpv6(ip: string): string[] {
  const halves = ip.toLowerCase().split('::');
  if (halves.length > 2 || !/^[0-9a-f:]+$/.test(ip.toLowerCase()))
    throw new Error(`"${ip}" is not an IP address`);
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) throw new Error(`"${ip}" is not an IP address`);
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (groups.some((g) => g.length === 0 || g.length > 4)) throw new Error(`"${ip}" is not an IP address`);
  return groups.map((g) => g.padStart(4, '0'));
}

/**
 * The PTR owner of an address and the reverse zone to use when none is configured: the /24
 * for IPv4 (the usual delegation unit) and the /64 for IPv6.
 */
export function reverseNameOf(ip: string): { name: string; derivedZone: string } {
  const { type, rdata } = addressRdata(ip);
  if (type === DNS_TYPE.A) {
    const o = [...rdata].reverse();
    return { name: `${o.join('.')}.in-addr.arpa`, derivedZone: `${o.slice(1).join('.')}.in-addr.arpa` };
  }
  const nibbles = rdata.toString('hex').split('').reverse();
  return { name: `${nibbles.join('.')}.ip6.arpa`, derivedZone: `${nibbles.slice(16).join('.')}.ip6.arpa` };
}
