import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type DeregistrationEvent } from './deregistrar.port';
import {
  buildDeregistrars,
  type DeregistrarFactoryDeps,
  parseDeregistrationTargets,
} from './deregistration-targets';
import { type PuppetDeregistrar } from './puppet.deregistrar';

const event: DeregistrationEvent = {
  event: 'instance.decommissioned',
  instanceId: 'i-1',
  name: 'web-1.example.com',
  domainName: 'norm-web-1',
  ip: null,
  mac: null,
  labels: {},
  at: '2026-01-01T00:00:00.000Z',
};

/** A test PKI made with openssl: the Puppet CA, a server and a client it signed, and a rogue CA with its own. */
function makePki(dir: string): void {
  const openssl = (...args: string[]): void =>
    void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const ca of ['ca', 'rogue-ca']) {
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${ca}.key`,
      '-out',
      `${ca}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=Puppet CA: ${ca}`,
    );
  }
  const issue = (name: string, cn: string, ca: string, ext?: string): void => {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${cn}`,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      ...(ext ? ['-extfile', ext] : []),
    );
  };
  issue('server', 'localhost', 'ca', 'server.ext');
  issue('client', 'norm', 'ca');
  issue('rogue-client', 'norm', 'rogue-ca');
  issue('rogue-server', 'localhost', 'rogue-ca', 'server.ext');
}

/**
 * Puppet Server's CA API and PuppetDB in one stand-in, over HTTPS that demands a client
 * certificate signed by the test CA (as both do), and allows only the certname `norm` (as
 * auth.conf and PuppetDB's allow-list do). It checks the documented request shapes.
 */
class PuppetStandIn {
  /** Certificates on the CA: certname → state. */
  readonly certs = new Map<string, 'signed' | 'revoked' | 'requested'>();
  /** PuppetDB nodes: certname → deactivation time. */
  readonly nodes = new Map<string, string | null>();
  readonly seen: string[] = [];
  readonly commands: unknown[] = [];
  private server: Server | undefined;
  port = 0;

  constructor(private readonly tls: { key: string; cert: string; ca: string }) {}

  async start(): Promise<void> {
    this.server = createServer({ ...this.tls, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        if (peer.subject.CN !== 'norm') return void res.writeHead(403).end('Forbidden');
        const url = new URL(req.url ?? '/', 'https://puppet');
        this.seen.push(`${req.method} ${url.pathname}`);
        const json = (status: number, value: unknown): void =>
          void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
        const cert = /^\/puppet-ca\/v1\/certificate_status\/([^/]+)$/.exec(url.pathname);
        if (cert) {
          const name = decodeURIComponent(cert[1] ?? '');
          const state = this.certs.get(name);
          if (req.method === 'GET') return state ? json(200, { name, state }) : void res.writeHead(404).end();
          if (req.method === 'PUT') {
            if (req.headers['content-type'] !== 'application/json')
              return void res.writeHead(400).end('type');
            if (body !== JSON.stringify({ desired_state: 'revoked' }))
              return void res.writeHead(400).end('body');
            if (!state) return void res.writeHead(404).end(`Invalid certificate subject.`);
            if (state !== 'signed')
              return void res
                .writeHead(409)
                .end(`Cannot revoke certificate for host ${name} without a signed certificate`);
            this.certs.set(name, 'revoked');
            return void res.writeHead(204).end();
          }
          if (req.method === 'DELETE') {
            if (!this.certs.delete(name)) return void res.writeHead(404).end(`Invalid certificate subject.`);
            return void res.writeHead(204).end();
          }
        }
        const node = /^\/pdb\/query\/v4\/nodes\/([^/]+)$/.exec(url.pathname);
        if (node && req.method === 'GET') {
          const name = decodeURIComponent(node[1] ?? '');
          if (!this.nodes.has(name))
            return json(404, { error: `No information is known about node ${name}` });
          return json(200, { certname: name, deactivated: this.nodes.get(name), expired: null });
        }
        if (url.pathname === '/pdb/cmd/v1' && req.method === 'POST') {
          const cmd = JSON.parse(body) as {
            command: string;
            version: number;
            payload: { certname: string; producer_timestamp: string };
          };
          this.commands.push(cmd);
          const q = url.searchParams;
          if (
            cmd.command !== 'deactivate node' ||
            cmd.version !== 3 ||
            Object.keys(cmd.payload).sort().join() !== 'certname,producer_timestamp' ||
            Number.isNaN(Date.parse(cmd.payload.producer_timestamp)) ||
            q.get('command') !== 'deactivate_node' ||
            q.get('version') !== '3' ||
            q.get('certname') !== cmd.payload.certname
          )
            return json(400, { error: 'malformed command' });
          // PuppetDB queues any deactivate, known node or not.
          if (this.nodes.has(cmd.payload.certname))
            this.nodes.set(cmd.payload.certname, cmd.payload.producer_timestamp);
          return json(200, { uuid: '6f3a6e4c-0d8e-4b5e-9e0a-2c1f8e7b1a00' });
        }
        if (url.pathname === '/pdb/meta/v1/version') return json(200, { version: '7.12.1' });
        res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.port = (this.server?.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
  }
}

describe('PuppetDeregistrar over mutual TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'norm-puppet-'));
  makePki(dir);
  const pem = (name: string): string => readFileSync(join(dir, name), 'utf8');
  const path = (name: string): string => join(dir, name);
  const puppet = new PuppetStandIn({ key: pem('server.key'), cert: pem('server.crt'), ca: pem('ca.crt') });
  const impostor = new PuppetStandIn({
    key: pem('rogue-server.key'),
    cert: pem('rogue-server.crt'),
    ca: pem('ca.crt'),
  });

  const deps = (over: Partial<DeregistrarFactoryDeps>): DeregistrarFactoryDeps => ({
    http: { post: () => Promise.reject(new Error('unused')) },
    commands: { run: () => Promise.reject(new Error('unused')) },
    clock: { now: () => new Date(), sleep: () => Promise.resolve() },
    webhookSecret: undefined,
    puppetCertPath: path('client.crt'),
    puppetKeyPath: path('client.key'),
    puppetCaPath: path('ca.crt'),
    timeoutMs: 3000,
    ...over,
  });
  const build = (over: Partial<DeregistrarFactoryDeps> = {}, port = puppet.port): PuppetDeregistrar =>
    buildDeregistrars(
      parseDeregistrationTargets(
        `puppet:site=ca=https://127.0.0.1:${port},puppetdb=https://127.0.0.1:${port}`,
      ),
      deps(over),
    )[0] as PuppetDeregistrar;

  beforeAll(async () => {
    await puppet.start();
    await impostor.start();
  });
  afterAll(async () => {
    await puppet.stop();
    await impostor.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    puppet.seen.length = 0;
    puppet.certs.clear();
    puppet.nodes.clear();
  });

  it('revokes and deletes the certificate, then deactivates the node; a second run is absent', async () => {
    puppet.certs.set('web-1.example.com', 'signed');
    puppet.certs.set('web-10.example.com', 'signed');
    puppet.nodes.set('web-1.example.com', null);
    const target = build();
    expect(await target.testConnection()).toEqual({ ok: true, detail: 'CA HTTP 404, PuppetDB HTTP 200' });
    puppet.seen.length = 0;
    expect(await target.deregister(event)).toEqual({ outcome: 'removed' });
    expect(puppet.seen).toEqual([
      'PUT /puppet-ca/v1/certificate_status/web-1.example.com',
      'DELETE /puppet-ca/v1/certificate_status/web-1.example.com',
      'GET /pdb/query/v4/nodes/web-1.example.com',
      'POST /pdb/cmd/v1',
    ]);
    expect([...puppet.certs.keys()]).toEqual(['web-10.example.com']);
    expect(puppet.nodes.get('web-1.example.com')).not.toBeNull();
    expect(await target.deregister(event)).toEqual({ outcome: 'absent' });
  });

  it('finishes a clean left half done: a revoked certificate (409) is still deleted', async () => {
    puppet.certs.set('web-1.example.com', 'revoked');
    expect(await build().deregister(event)).toEqual({ outcome: 'removed' });
    expect(puppet.certs.has('web-1.example.com')).toBe(false);
    expect(puppet.seen).not.toContain('POST /pdb/cmd/v1');
  });

  it('a node PuppetDB already deactivated is not deactivated again', async () => {
    puppet.nodes.set('web-1.example.com', '2026-01-01T00:00:00.000Z');
    expect(await build().deregister(event)).toEqual({ outcome: 'absent' });
    expect(puppet.nodes.get('web-1.example.com')).toBe('2026-01-01T00:00:00.000Z');
  });

  it('a client certificate from another CA never gets a request through', async () => {
    puppet.certs.set('web-1.example.com', 'signed');
    const target = build({
      puppetCertPath: path('rogue-client.crt'),
      puppetKeyPath: path('rogue-client.key'),
    });
    await expect(target.deregister(event)).rejects.toThrow(
      /^PUT https:\/\/127\.0\.0\.1:\d+\/puppet-ca\/v1\/certificate_status\/web-1\.example\.com: /,
    );
    expect(puppet.seen).toEqual([]);
    expect(puppet.certs.get('web-1.example.com')).toBe('signed');
    expect((await target.testConnection()).ok).toBe(false);
  });

  it('pins the Puppet CA: a server certificate from another CA is refused', async () => {
    const err = (await build({}, impostor.port)
      .deregister(event)
      .catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/certificate/i);
    expect(impostor.seen).toEqual([]);
  });

  it('a refusal carries the status and the server text, not the key', async () => {
    puppet.certs.set('web-1.example.com', 'signed');
    // Signed by the CA but not allowed by the stand-in's auth.conf (only `norm` is): a 403.
    const target = build({ puppetCertPath: path('server.crt'), puppetKeyPath: path('server.key') });
    const err = (await target.deregister(event).catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(
      'puppet CA answered 403 to PUT /puppet-ca/v1/certificate_status/web-1.example.com: Forbidden',
    );
    expect(puppet.certs.get('web-1.example.com')).toBe('signed');
    expect(target.describe()).toEqual({
      kind: 'puppet',
      name: 'puppet:site',
      caUrl: `https://127.0.0.1:${puppet.port}`,
      puppetdbUrl: `https://127.0.0.1:${puppet.port}`,
      auth: 'client certificate',
    });
  });

  it('refuses to build with a missing file or a key that does not match the certificate', () => {
    expect(() => build({ puppetCaPath: undefined })).toThrow('needs NORM_DEREGISTRATION_PUPPET_CA_PATH');
    expect(() => build({ puppetKeyPath: path('rogue-client.key') })).toThrow(
      'does not match the certificate',
    );
    expect(() => build({ puppetCertPath: path('client.key') })).toThrow('is not a PEM certificate');
  });

  it('parses ca= and puppetdb= origins, https only', () => {
    expect(parseDeregistrationTargets('puppet:p=puppetdb=https://pdb:8081')).toEqual([
      { kind: 'puppet', name: 'p', puppetdbUrl: 'https://pdb:8081' },
    ]);
    expect(() => parseDeregistrationTargets('puppet:p=ca=http://puppet:8140')).toThrow('must be https');
    expect(() => parseDeregistrationTargets('puppet:p=https://puppet:8140')).toThrow('ca=https://');
  });
});
