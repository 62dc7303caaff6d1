import { randomInt } from 'node:crypto';
import { connect } from 'node:net';
import { type Deregistrar, type DeregistrationEvent } from './deregistrar.port';
import {
  addressRdata,
  DNS_CLASS,
  DNS_OPCODE,
  DNS_RCODE_NAMES,
  DNS_TYPE,
  type DnsMessage,
  encodeMessage,
  encodeName,
  parseResponse,
  reverseNameOf,
  signMessage,
  type TsigKey,
  verifyResponse,
} from './dns-message.codec';

/** One request, one response. A port so the codec's users can be tested without sockets. */
export type DnsTransport = (
  server: { host: string; port: number },
  message: Buffer,
  timeoutMs: number,
) => Promise<Buffer>;

/**
 * DNS over TCP (RFC 1035 §4.2.2 and RFC 7766): a two-byte length before each message. TCP
 * rather than UDP because an update must not be resent blindly on a lost datagram, and a
 * signed update with its TSIG record can outgrow a 512-byte datagram.
 */
export const tcpDnsTransport: DnsTransport = (server, message, timeoutMs) =>
  new Promise((resolve, reject) => {
    const socket = connect({ host: server.host, port: server.port });
    let received = Buffer.alloc(0);
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(timeoutMs, () =>
      fail(new Error(`no DNS answer from ${server.host}:${server.port} within ${timeoutMs} ms`)),
    );
    socket.once('error', (err) =>
      fail(new Error(`DNS server ${server.host}:${server.port}: ${err.message}`)),
    );
    socket.once('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(message.length);
      socket.write(Buffer.concat([length, message]));
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2) return;
      const want = received.readUInt16BE(0);
      if (received.length < 2 + want) return;
      socket.end();
      resolve(received.subarray(2, 2 + want));
    });
    socket.once('end', () => {
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0))
        fail(new Error(`DNS server ${server.host}:${server.port} closed the connection before answering`));
    });
  });

export interface DnsDeregistrarOptions {
  name: string;
  server: { host: string; port: number };
  /** Forward zone holding `<instance name>.<zone>`. */
  zone: string;
  /** Reverse zone for the PTR; unset: derived from the address (/24 for IPv4, /64 for IPv6). */
  reverseZone?: string | undefined;
  tsig: { keyName: string; secret: Buffer };
  timeoutMs: number;
}

type ZoneOutcome = 'removed' | 'absent';

/**
 * DNS: an RFC 2136 update per zone, signed with TSIG (HMAC-SHA256), deleting the instance's
 * A (or AAAA) record and its PTR. Each deletes only the record that points at this instance
 * (its name with its address, its address with its name), never the whole RRset, so a
 * successor that reused the name or the address keeps its records should this retry late.
 * The prerequisite "this name has such an RRset" tells removed from already absent: the
 * server answers NXRRSET and changes nothing when the record is gone, which is success.
 */
export class DnsDeregistrar implements Deregistrar {
  readonly name: string;
  private readonly key: TsigKey;

  constructor(
    private readonly options: DnsDeregistrarOptions,
    private readonly transport: DnsTransport = tcpDnsTransport,
    private readonly nowS: () => number = () => Math.floor(Date.now() / 1000),
  ) {
    this.name = `dns:${options.name}`;
    this.key = { name: options.tsig.keyName, algorithm: 'hmac-sha256', secret: options.tsig.secret };
  }

  async deregister(event: DeregistrationEvent): Promise<{ outcome: 'removed' | 'absent' }> {
    // Norm registers records by address; an instance that never had one has none to remove.
    if (!event.ip) return { outcome: 'absent' };
    const fqdn = `${event.name}.${this.options.zone}`;
    const address = addressRdata(event.ip);
    const reverse = reverseNameOf(event.ip);
    const reverseZone = this.options.reverseZone ?? reverse.derivedZone;
    if (!inZone(reverse.name, reverseZone))
      throw new Error(`${event.ip} (${reverse.name}) is not in reverse zone ${reverseZone}`);
    const forward = await this.deleteRecord(this.options.zone, fqdn, address.type, address.rdata);
    const ptr = await this.deleteRecord(reverseZone, reverse.name, DNS_TYPE.PTR, encodeName(fqdn));
    return { outcome: forward === 'removed' || ptr === 'removed' ? 'removed' : 'absent' };
  }

  /** A signed SOA query for the forward zone: reachability, authority and the key in one answer. */
  async testConnection(): Promise<{ ok: boolean; detail: string }> {
    try {
      const rcode = await this.exchange({
        id: randomInt(0x10000),
        opcode: DNS_OPCODE.QUERY,
        questions: [{ name: this.options.zone, type: DNS_TYPE.SOA, class: DNS_CLASS.IN }],
        answers: [],
        authorities: [],
      });
      if (rcode !== 0) return { ok: false, detail: explain(rcode, null, this.options.zone, this.key.name) };
      return { ok: true, detail: `SOA of ${this.options.zone} answered and signed` };
    } catch (err) {
      return { ok: false, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  describe(): Record<string, unknown> {
    return {
      kind: 'dns',
      name: this.name,
      server: `${this.options.server.host}:${this.options.server.port}`,
      zone: this.options.zone,
      reverseZone: this.options.reverseZone ?? 'derived from the address',
      tsigKey: this.key.name,
      algorithm: this.key.algorithm,
    };
  }

  private async deleteRecord(zone: string, owner: string, type: number, rdata: Buffer): Promise<ZoneOutcome> {
    const rcode = await this.exchange({
      id: randomInt(0x10000),
      opcode: DNS_OPCODE.UPDATE,
      questions: [{ name: zone, type: DNS_TYPE.SOA, class: DNS_CLASS.IN }],
      // RFC 2136 §2.4.1 "RRset exists (value independent)": class ANY, TTL 0, no RDATA.
      answers: [{ name: owner, type, class: DNS_CLASS.ANY, ttl: 0, rdata: Buffer.alloc(0) }],
      // §2.5.4 "delete an RR from an RRset": class NONE, TTL 0, the RR's own RDATA.
      authorities: [{ name: owner, type, class: DNS_CLASS.NONE, ttl: 0, rdata }],
    });
    if (rcode === 0) return 'removed';
    if (rcode === 8) return 'absent';
    throw new Error(explain(rcode, null, zone, this.key.name));
  }

  /** Sends one signed message and returns the RCODE of a response whose signature verified. */
  private async exchange(message: DnsMessage): Promise<number> {
    const signed = signMessage(encodeMessage(message), this.key, this.nowS());
    const raw = await this.transport(this.options.server, signed.message, this.options.timeoutMs);
    const response = parseResponse(raw);
    const zone = message.questions[0]?.name ?? '';
    if (!response.isResponse || response.id !== message.id)
      throw new Error(`DNS server ${this.server} answered with a message that is not our response`);
    // A TSIG error comes back unsigned (the server could not check us), so it is explained first.
    if (response.tsig && response.tsig.error !== 0)
      throw new Error(explain(response.rcode, response.tsig.error, zone, this.key.name));
    const bad = verifyResponse(raw, response, signed.mac, this.key, this.nowS());
    if (bad) {
      if (response.rcode !== 0 && response.rcode !== 8)
        throw new Error(explain(response.rcode, null, zone, this.key.name));
      throw new Error(`DNS server ${this.server}: ${bad}`);
    }
    return response.rcode;
  }

  private get server(): string {
    return `${this.options.server.host}:${this.options.server.port}`;
  }
}

function inZone(name: string, zone: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  const z = zone.toLowerCase().replace(/\.$/, '');
  return n === z || n.endsWith(`.${z}`);
}

/** What an operator should check, per RCODE and TSIG error. */
function explain(rcode: number, tsigError: number | null, zone: string, keyName: string): string {
  const code = DNS_RCODE_NAMES[tsigError ?? rcode] ?? `RCODE ${tsigError ?? rcode}`;
  switch (tsigError ?? rcode) {
    case 16:
      return `DNS update of ${zone} rejected (${code}): the TSIG secret does not match key "${keyName}" on the server (NORM_DEREGISTRATION_DNS_TSIG_SECRET)`;
    case 17:
      return `DNS update of ${zone} rejected (${code}): the server does not know TSIG key "${keyName}" (NORM_DEREGISTRATION_DNS_TSIG_KEY_NAME)`;
    case 18:
      return `DNS update of ${zone} rejected (${code}): our clock and the server's differ by more than the TSIG fudge`;
    case 5:
      return `DNS update of ${zone} refused (${code}): the zone does not let key "${keyName}" update it (allow-update / update-policy)`;
    case 9:
      return `DNS update of ${zone} rejected (${code}): the server is not authoritative for ${zone}, or the key is not accepted for it`;
    case 10:
      return `DNS update of ${zone} rejected (${code}): the name is not inside zone ${zone}`;
    case 4:
      return `DNS update of ${zone} rejected (${code}): the server does not implement dynamic updates`;
    case 2:
      return `DNS update of ${zone} failed on the server (${code})`;
    default:
      return `DNS update of ${zone} failed (${code})`;
  }
}
