import { createServer, type Server, type Socket } from 'node:net';
import { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type DeregistrationEvent } from './deregistrar.port';
import { buildDeregistrars, parseDeregistrationTargets } from './deregistration-targets';
import {
  addressRdata,
  DNS_CLASS,
  DNS_OPCODE,
  DNS_TYPE,
  encodeMessage,
  encodeName,
  parseResponse,
  reverseNameOf,
  signMessage,
} from './dns-message.codec';
import { DnsDeregistrar, tcpDnsTransport } from './dns.deregistrar';

const event: DeregistrationEvent = {
  event: 'instance.decommissioned',
  instanceId: 'i-1',
  name: 'web-1',
  domainName: 'web-1',
  ip: '10.77.0.10',
  mac: null,
  labels: {},
  at: '2026-01-01T00:00:00.000Z',
};
const deps = {
  http: { post: () => Promise.reject(new Error('unused')) },
  commands: { run: () => Promise.reject(new Error('unused')) },
  clock: { now: () => new Date(), sleep: () => Promise.resolve() },
  webhookSecret: undefined,
  timeoutMs: 300,
};
const tsig = { keyName: 'norm', secret: Buffer.alloc(32, 7).toString('base64') };

describe('dns target spec', () => {
  it('reads server[:port]/zone[/reverse-zone], port 53 by default', () => {
    expect(parseDeregistrationTargets('dns:ns=ns1.example/lab.example.')).toEqual([
      { kind: 'dns', name: 'ns', host: 'ns1.example', port: 53, zone: 'lab.example', reverseZone: undefined },
    ]);
    expect(parseDeregistrationTargets('dns:ns=[::1]:5353/lab.example/0.77.10.in-addr.arpa')).toEqual([
      {
        kind: 'dns',
        name: 'ns',
        host: '::1',
        port: 5353,
        zone: 'lab.example',
        reverseZone: '0.77.10.in-addr.arpa',
      },
    ]);
  });

  it.each([
    ['dns:ns=ns1.example', 'needs server[:port]/zone[/reverse-zone]'],
    ['dns:ns=ns1.example:70000/lab.example', 'port 70000 is not 1-65535'],
    ['dns:ns=ns1.example/lab..example', '"lab..example" is not a zone name'],
    ['dns:ns=ns1.example/lab.example/a/b', 'needs server[:port]/zone[/reverse-zone]'],
  ])('refuses %s', (text, message) => {
    expect(() => parseDeregistrationTargets(text)).toThrow(message);
  });

  it('refuses to build without the TSIG key name and secret', () => {
    expect(() =>
      buildDeregistrars(parseDeregistrationTargets('dns:ns=ns1.example/lab.example'), deps),
    ).toThrow('NORM_DEREGISTRATION_DNS_TSIG_KEY_NAME and NORM_DEREGISTRATION_DNS_TSIG_SECRET');
  });

  it('describes itself without the secret', () => {
    const [t] = buildDeregistrars(parseDeregistrationTargets('dns:ns=ns1.example/lab.example'), {
      ...deps,
      dnsTsig: tsig,
    });
    expect(t!.describe()).toEqual({
      kind: 'dns',
      name: 'dns:ns',
      server: 'ns1.example:53',
      zone: 'lab.example',
      reverseZone: 'derived from the address',
      tsigKey: 'norm',
      algorithm: 'hmac-sha256',
    });
    expect(JSON.stringify(t!.describe())).not.toContain(tsig.secret);
  });
});

describe('dns message codec', () => {
  it('derives PTR owners and reverse zones for IPv4 and IPv6', () => {
    expect(reverseNameOf('10.77.0.10')).toEqual({
      name: '10.0.77.10.in-addr.arpa',
      derivedZone: '0.77.10.in-addr.arpa',
    });
    const v6 = reverseNameOf('2001:db8::1');
    expect(v6.name).toBe(`1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.ip6.arpa`);
    expect(v6.derivedZone).toBe('0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
    expect(addressRdata('2001:db8::1').type).toBe(DNS_TYPE.AAAA);
    expect(() => addressRdata('10.0.0.300')).toThrow('not an IPv4 address');
    expect(() => addressRdata('1:2:3')).toThrow('not an IP address');
  });

  it('encodes names and refuses over-long labels', () => {
    expect(encodeName('Web-1.Lab.')).toEqual(Buffer.from('\x05web-1\x03lab\x00', 'latin1'));
    expect(() => encodeName(`${'a'.repeat(64)}.example`)).toThrow('over-long label');
  });

  it('signs with one TSIG record in the additional section, which the parser finds', () => {
    const message = encodeMessage({
      id: 0x1234,
      opcode: DNS_OPCODE.UPDATE,
      questions: [{ name: 'lab.example', type: DNS_TYPE.SOA, class: DNS_CLASS.IN }],
      answers: [],
      authorities: [
        {
          name: 'web-1.lab.example',
          type: DNS_TYPE.A,
          class: DNS_CLASS.NONE,
          ttl: 0,
          rdata: Buffer.from([10, 77, 0, 10]),
        },
      ],
    });
    const signed = signMessage(
      message,
      { name: 'norm', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 1) },
      1_700_000_000,
    );
    expect(signed.mac).toHaveLength(32);
    expect(signed.message.readUInt16BE(10)).toBe(1);
    const parsed = parseResponse(signed.message);
    expect(parsed).toMatchObject({ id: 0x1234, isResponse: false, opcode: DNS_OPCODE.UPDATE, rcode: 0 });
    expect(parsed.tsig).toMatchObject({
      offset: message.length,
      keyName: 'norm',
      algorithm: 'hmac-sha256',
      timeSigned: 1_700_000_000,
      fudge: 300,
      mac: signed.mac,
      originalId: 0x1234,
      error: 0,
    });
  });
});

describe('dns transport', () => {
  let server: Server | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = undefined;
  });

  const listen = async (onData: (socket: Socket, data: Buffer) => void): Promise<number> => {
    server = createServer((socket) => {
      sockets.push(socket);
      socket.on('data', (d: Buffer) => onData(socket, d));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  };

  const target = (port: number): DnsDeregistrar =>
    new DnsDeregistrar({
      name: 'ns',
      server: { host: '127.0.0.1', port },
      zone: 'lab.example',
      tsig: { keyName: tsig.keyName, secret: Buffer.from(tsig.secret, 'base64') },
      timeoutMs: 300,
    });

  it('a server that accepts but never answers fails within the timeout', async () => {
    const port = await listen(() => undefined);
    const started = Date.now();
    await expect(target(port).deregister(event)).rejects.toThrow(
      `no DNS answer from 127.0.0.1:${port} within 300 ms`,
    );
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('an answer that is not the response to our message is refused', async () => {
    const port = await listen((socket) => {
      // A well-formed header with the wrong id and no QR bit, length-prefixed.
      socket.end(Buffer.from([0, 12, 0xab, 0xcd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    });
    await expect(target(port).deregister(event)).rejects.toThrow('not our response');
  });

  it('an unsigned answer is not believed', async () => {
    const port = await listen((socket, data) => {
      const reply = Buffer.from(data.subarray(2, 14));
      reply.writeUInt16BE(0xa800, 2); // QR, opcode UPDATE, NOERROR
      reply.fill(0, 4);
      const framed = Buffer.concat([Buffer.from([0, 12]), reply]);
      socket.end(framed);
    });
    await expect(target(port).deregister(event)).rejects.toThrow('the response is not signed');
  });

  it('a connection closed before the answer is a clear failure', async () => {
    const port = await listen((socket) => socket.end());
    await expect(tcpDnsTransport({ host: '127.0.0.1', port }, Buffer.alloc(12), 300)).rejects.toThrow(
      'closed the connection before answering',
    );
  });
});
