import { ValidationFailed } from '../errors';

/**
 * IPv4 arithmetic for IPAM. Addresses are handled as unsigned 32-bit integers; Norm's guest
 * networks are IPv4 bridges (Xen vif `ip=` takes one IPv4 address).
 */

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export interface Cidr {
  network: number;
  prefix: number;
  /** Last address of the block (the broadcast address for prefixes below 31). */
  last: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const [addr, bits, extra] = text.split('/');
  if (addr === undefined || bits === undefined || extra !== undefined || !/^\d{1,2}$/.test(bits))
    return undefined;
  const prefix = Number(bits);
  const ip = parseIpv4(addr);
  if (ip === undefined || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  const network = ip - (ip % size);
  // A CIDR with host bits set (10.0.0.1/24) is almost always a typo; Postgres' cidr type refuses it too.
  if (network !== ip) return undefined;
  return { network, prefix, last: network + size - 1 };
}

export function cidrContains(cidr: Cidr, ip: number): boolean {
  return ip >= cidr.network && ip <= cidr.last;
}

export interface NetworkRange {
  cidr: string;
  gateway: string | null;
  rangeStart: string;
  rangeEnd: string;
}

/**
 * Checks a network definition as a whole and names the field at fault: the range must lie
 * inside the CIDR, avoid the network and broadcast addresses, and the gateway (which guests
 * route through) must be inside the CIDR but outside the range.
 */
export function validateNetworkRange(n: NetworkRange): void {
  const issues: Array<{ path: string; message: string }> = [];
  const cidr = parseCidr(n.cidr);
  if (!cidr)
    issues.push({ path: 'cidr', message: 'must be an IPv4 CIDR without host bits, e.g. 10.0.0.0/24' });
  const start = parseIpv4(n.rangeStart);
  const end = parseIpv4(n.rangeEnd);
  const gateway = n.gateway === null ? null : parseIpv4(n.gateway);
  if (start === undefined) issues.push({ path: 'rangeStart', message: 'must be an IPv4 address' });
  if (end === undefined) issues.push({ path: 'rangeEnd', message: 'must be an IPv4 address' });
  if (gateway === undefined) issues.push({ path: 'gateway', message: 'must be an IPv4 address' });
  if (cidr && start !== undefined && end !== undefined) {
    const reserved = cidr.prefix < 31 ? [cidr.network, cidr.last] : [];
    if (!cidrContains(cidr, start) || reserved.includes(start))
      issues.push({ path: 'rangeStart', message: `must be a host address inside ${n.cidr}` });
    if (!cidrContains(cidr, end) || reserved.includes(end))
      issues.push({ path: 'rangeEnd', message: `must be a host address inside ${n.cidr}` });
    if (start > end) issues.push({ path: 'rangeEnd', message: 'must not be below rangeStart' });
    if (gateway !== null && gateway !== undefined) {
      if (!cidrContains(cidr, gateway)) issues.push({ path: 'gateway', message: `must be inside ${n.cidr}` });
      else if (gateway >= start && gateway <= end)
        issues.push({ path: 'gateway', message: 'must be outside the allocation range' });
    }
  }
  if (issues.length > 0) throw new ValidationFailed('invalid network', issues);
}

export function rangeSize(rangeStart: string, rangeEnd: string): number {
  const start = parseIpv4(rangeStart);
  const end = parseIpv4(rangeEnd);
  if (start === undefined || end === undefined || end < start) return 0;
  return end - start + 1;
}
