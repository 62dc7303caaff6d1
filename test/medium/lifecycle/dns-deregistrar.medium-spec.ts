import { randomBytes } from 'node:crypto';
import {
  buildDeregistrars,
  type Deregistrar,
  DnsDeregistrar,
  type DeregistrationEvent,
  parseDeregistrationTargets,
  tcpDnsTransport,
} from '@norm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NamedServer, startNamed } from '../../harness/named';

const event: DeregistrationEvent = {
  event: 'instance.decommissioned',
  instanceId: 'i-1',
  name: 'web-1',
  domainName: 'web-1',
  ip: '10.77.0.10',
  mac: '00:16:3e:00:00:01',
  labels: {},
  at: '2026-01-01T00:00:00.000Z',
};

/** The dns target against Debian's real `named`, with zones that accept TSIG-signed updates. */
describe('dns deregistration target against a real named', () => {
  let named: NamedServer;

  beforeAll(async () => {
    named = await startNamed([
      { name: 'lab.example', updatable: true },
      { name: '0.77.10.in-addr.arpa', updatable: true },
      { name: 'locked.example', updatable: false },
    ]);
  });
  afterAll(async () => {
    await named?.stop();
  });

  const target = (spec: string, secret = named.secret, keyName = named.keyName): Deregistrar => {
    const [t] = buildDeregistrars(parseDeregistrationTargets(`dns:main=127.0.0.1:${named.port}/${spec}`), {
      http: { post: () => Promise.reject(new Error('unused')) },
      commands: { run: () => Promise.reject(new Error('unused')) },
      clock: { now: () => new Date(), sleep: () => Promise.resolve() },
      webhookSecret: undefined,
      dnsTsig: { keyName, secret },
      timeoutMs: 5000,
    });
    return t!;
  };

  it('removes the A and PTR records, leaves the neighbours, and is already absent the second time', async () => {
    await named.nsupdate([
      'zone lab.example',
      'update add web-1.lab.example 300 A 10.77.0.10',
      'update add web-2.lab.example 300 A 10.77.0.11',
    ]);
    await named.nsupdate([
      'zone 0.77.10.in-addr.arpa',
      'update add 10.0.77.10.in-addr.arpa 300 PTR web-1.lab.example.',
      'update add 11.0.77.10.in-addr.arpa 300 PTR web-2.lab.example.',
    ]);
    expect(await named.dig('web-1.lab.example', 'A')).toEqual(['10.77.0.10']);
    expect(await named.dig('10.0.77.10.in-addr.arpa', 'PTR')).toEqual(['web-1.lab.example.']);

    // The reverse zone is derived from the address (its /24) when the spec names none.
    const dns = target('lab.example');
    expect(await dns.testConnection()).toEqual({
      ok: true,
      detail: 'SOA of lab.example answered and signed',
    });
    expect(await dns.deregister(event)).toEqual({ outcome: 'removed' });
    expect(await named.dig('web-1.lab.example', 'A')).toEqual([]);
    expect(await named.dig('10.0.77.10.in-addr.arpa', 'PTR')).toEqual([]);
    expect(await named.dig('web-2.lab.example', 'A')).toEqual(['10.77.0.11']);
    expect(await named.dig('11.0.77.10.in-addr.arpa', 'PTR')).toEqual(['web-2.lab.example.']);

    expect(await dns.deregister(event)).toEqual({ outcome: 'absent' });
    // An explicit reverse zone works the same.
    expect(await target('lab.example/0.77.10.in-addr.arpa').deregister(event)).toEqual({ outcome: 'absent' });
  });

  it("deletes only this instance's record: a successor that reused the name keeps its address", async () => {
    await named.nsupdate(['zone lab.example', 'update add web-3.lab.example 300 A 10.77.0.99']);
    const outcome = await target('lab.example').deregister({ ...event, name: 'web-3', ip: '10.77.0.12' });
    expect(outcome).toEqual({ outcome: 'removed' });
    expect(await named.dig('web-3.lab.example', 'A')).toEqual(['10.77.0.99']);
  });

  it('a wrong TSIG secret fails clearly and changes nothing', async () => {
    await named.nsupdate(['zone lab.example', 'update add web-4.lab.example 300 A 10.77.0.14']);
    const wrong = target('lab.example', randomBytes(32).toString('base64'));
    await expect(wrong.deregister({ ...event, name: 'web-4', ip: '10.77.0.14' })).rejects.toThrow(
      /rejected \(BADSIG\): the TSIG secret does not match key "norm-test-key"/,
    );
    expect(await named.dig('web-4.lab.example', 'A')).toEqual(['10.77.0.14']);
    const test = await wrong.testConnection();
    expect(test.ok).toBe(false);
    expect(test.detail).toContain('BADSIG');
  });

  it('an unknown key name is BADKEY, a zone without updates REFUSED, a zone not served NOTAUTH', async () => {
    await expect(
      target('lab.example', named.secret, 'someone-else').deregister({ ...event, name: 'web-5' }),
    ).rejects.toThrow(/\(BADKEY\): the server does not know TSIG key "someone-else"/);
    await expect(target('locked.example/0.77.10.in-addr.arpa').deregister(event)).rejects.toThrow(
      /DNS update of locked.example refused \(REFUSED\)/,
    );
    await expect(target('elsewhere.example').deregister(event)).rejects.toThrow(
      /DNS update of elsewhere.example rejected \(NOTAUTH\)/,
    );
  });

  it('an address outside the configured reverse zone is a clear failure before anything is sent', async () => {
    await expect(
      target('lab.example/0.77.10.in-addr.arpa').deregister({ ...event, ip: '10.78.0.10' }),
    ).rejects.toThrow('10.78.0.10 (10.0.78.10.in-addr.arpa) is not in reverse zone 0.77.10.in-addr.arpa');
  });

  it("a response altered on the way fails TSIG verification: Norm does not take the server's word unsigned", async () => {
    const dns = new DnsDeregistrar(
      {
        name: 'main',
        server: { host: '127.0.0.1', port: named.port },
        zone: 'lab.example',
        tsig: { keyName: named.keyName, secret: Buffer.from(named.secret, 'base64') },
        timeoutMs: 5000,
      },
      async (server, message, timeoutMs) => {
        const answer = Buffer.from(await tcpDnsTransport(server, message, timeoutMs));
        // The TSIG record starts at its owner, the key name's length byte; the byte just before
        // it is the last of the SOA answer (its minimum TTL): change that.
        const tsigAt = answer.lastIndexOf(Buffer.from(named.keyName)) - 1;
        answer.writeUInt8(answer.readUInt8(tsigAt - 1) ^ 0xff, tsigAt - 1);
        return answer;
      },
    );
    expect(await dns.testConnection()).toEqual({
      ok: false,
      detail: `DNS server 127.0.0.1:${named.port}: the response's TSIG signature does not verify`,
    });
  });

  it('a server that does not answer fails within the timeout', async () => {
    const [t] = buildDeregistrars(parseDeregistrationTargets('dns:main=127.0.0.1:9/lab.example'), {
      http: { post: () => Promise.reject(new Error('unused')) },
      commands: { run: () => Promise.reject(new Error('unused')) },
      clock: { now: () => new Date(), sleep: () => Promise.resolve() },
      webhookSecret: undefined,
      dnsTsig: { keyName: named.keyName, secret: named.secret },
      timeoutMs: 1000,
    });
    await expect(t!.deregister(event)).rejects.toThrow(/DNS server 127.0.0.1:9/);
  });
});
