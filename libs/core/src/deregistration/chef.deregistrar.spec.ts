import { createHash, createPrivateKey, createVerify, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChefDeregistrar, chefSignedHeaders, chefStringToSign } from './chef.deregistrar';
import { type DeregistrationEvent } from './deregistrar.port';
import {
  buildDeregistrars,
  type DeregistrarFactoryDeps,
  parseDeregistrationTargets,
} from './deregistration-targets';

const event: DeregistrationEvent = {
  event: 'instance.decommissioned',
  instanceId: 'i-1',
  name: 'web-1',
  domainName: 'norm-web-1',
  ip: null,
  mac: null,
  labels: {},
  at: '2026-01-01T00:00:00.000Z',
};

// Chef RFC 065's worked example (public domain): key, request and the exact expected signature.
const RFC_KEY = `-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA0ueqo76MXuP6XqZBILFziH/9AI7C6PaN5W0dSvkr9yInyGHS
z/IR1+4tqvP2qlfKVKI4CP6BFH251Ft9qMUBuAsnlAVQ1z0exDtIFFOyQCdR7iXm
jBIWMSS4buBwRQXwDK7id1OxtU23qVJv+xwEV0IzaaSJmaGLIbvRBD+qatfUuQJB
MU/04DdJIwvLtZBYdC2219m5dUBQaa4bimL+YN9EcsDzD9h9UxQo5ReK7b3cNMzJ
BKJWLzFBcJuePMzAnLFktr/RufX4wpXe6XJxoVPaHo72GorLkwnQ0HYMTY8rehT4
mDi1FI969LHCFFaFHSAaRnwdXaQkJmSfcxzCYQIDAQABAoIBAQCW3I4sKN5B9jOe
xq/pkeWBq4OvhW8Ys1yW0zFT8t6nHbB1XrwscQygd8gE9BPqj3e0iIEqtdphbPmj
VHqTYbC0FI6QDClifV7noTwTBjeIOlgZ0NSUN0/WgVzIOxUz2mZ2vBZUovKILPqG
TOi7J7RXMoySMdcXpP1f+PgvYNcnKsT72UcWaSXEV8/zo+Zm/qdGPVWwJonri5Mp
DVm5EQSENBiRyt028rU6ElXORNmoQpVjDVqZ1gipzXkifdjGyENw2rt4V/iKYD7V
5iqXOsvP6Cemf4gbrjunAgDG08S00kiUgvVWcdXW+dlsR2nCvH4DOEe3AYYh/aH8
DxEE7FbtAoGBAPcNO8fJ56mNw0ow4Qg38C+Zss/afhBOCfX4O/SZKv/roRn5+gRM
KRJYSVXNnsjPI1plzqR4OCyOrjAhtuvL4a0DinDzf1+fiztyNohwYsW1vYmqn3ti
EN0GhSgE7ppZjqvLQ3f3LUTxynhA0U+k9wflb4irIlViTUlCsOPkrNJDAoGBANqL
Q+vvuGSsmRLU/Cenjy+Mjj6+QENg51dz34o8JKuVKIPKU8pNnyeLa5fat0qD2MHm
OB9opeQOcw0dStodxr6DB3wi83bpjeU6BWUGITNiWEaZEBrQ0aiqNJJKrrHm8fAZ
9o4l4oHc4hI0kYVYYDuxtKuVJrzZiEapTwoOcYiLAoGBAI/EWbeIHZIj9zOjgjEA
LHvm25HtulLOtyk2jd1njQhlHNk7CW2azIPqcLLH99EwCYi/miNH+pijZ2aHGCXb
/bZrSxM0ADmrZKDxdB6uGCyp+GS2sBxjEyEsfCyvwhJ8b3Q100tqwiNO+d5FCglp
HICx2dgUjuRVUliBwOK93nx1AoGAUI8RhIEjOYkeDAESyhNMBr0LGjnLOosX+/as
qiotYkpjWuFULbibOFp+WMW41vDvD9qrSXir3fstkeIAW5KqVkO6mJnRoT3Knnra
zjiKOITCAZQeiaP8BO5o3pxE9TMqb9VCO3ffnPstIoTaN4syPg7tiGo8k1SklVeH
2S8lzq0CgYAKG2fljIYWQvGH628rp4ZcXS4hWmYohOxsnl1YrszbJ+hzR+IQOhGl
YlkUQYXhy9JixmUUKtH+NXkKX7Lyc8XYw5ETr7JBT3ifs+G7HruDjVG78EJVojbd
8uLA+DdQm5mg4vd1GTiSK65q/3EeoBlUaVor3HhLFki+i9qpT8CBsg==
-----END RSA PRIVATE KEY-----
`;

describe('chefSignedHeaders', () => {
  it("reproduces Chef RFC 065's v1.3 example byte for byte", () => {
    const headers = chefSignedHeaders({
      method: 'POST',
      path: '/organizations/clownco',
      body: 'Spec Body',
      userId: 'spec-user',
      at: new Date('2009-01-01T12:00:00Z'),
      key: createPrivateKey(RFC_KEY),
    });
    expect(headers['x-ops-content-hash']).toBe('hDlKNZhIhgso3Fs0S0pZwJ0xyBWtR1RBaeHs1DrzOho=');
    expect(headers['x-ops-timestamp']).toBe('2009-01-01T12:00:00Z');
    expect(headers['x-ops-sign']).toBe('algorithm=sha256;version=1.3');
    expect(headers['x-ops-server-api-version']).toBe('1');
    expect([1, 2, 3, 4, 5, 6].map((n) => headers[`x-ops-authorization-${n}`])).toEqual([
      'FZOmXAyOBAZQV/uw188iBljBJXOm+m8xQ/8KTGLkgGwZNcRFxk1m953XjE3W',
      'VGy1dFT76KeaNWmPCNtDmprfH2na5UZFtfLIKrPv7xm80V+lzEzTd9WBwsfP',
      '42dZ9N+V9I5SVfcL/lWrrlpdybfceJC5jOcP5tzfJXWUITwb6Z3Erg3DU3Uh',
      'H9h9E0qWlYGqmiNCVrBnpe6Si1gU/Jl+rXlRSNbLJ4GlArAPuL976iTYJTzE',
      'MmbLUIm3JRYi00Yb01IUCCKdI90vUq1HHNtlTEu93YZfQaJwRxXlGkCNwIJe',
      'fy49QzaCIEu1XiOx5Jn+4GmkrZch/RrK9VzQWXgs+w==',
    ]);
    expect(headers['x-ops-authorization-7']).toBeUndefined();
  });

  it('canonicalises the signed path the way the server does', () => {
    const s = chefStringToSign({
      method: 'delete',
      path: '//organizations/acme//nodes/web-1/?x=1',
      contentHash: 'h',
      timestamp: 't',
      userId: 'u',
    });
    expect(s.split('\n').slice(0, 2)).toEqual(['Method:DELETE', 'Path:/organizations/acme/nodes/web-1']);
  });
});

/**
 * A Chef Infra Server stand-in that authenticates as the RFC describes: it rebuilds the
 * string to sign from the headers, the method, the path and the body it received, checks the
 * content hash and the timestamp window, and verifies the joined X-Ops-Authorization-N
 * headers with the client's registered public key. Anything else is a 401.
 */
class ChefServerStandIn {
  readonly nodes = new Set<string>();
  readonly clients = new Set<string>();
  readonly seen: string[] = [];
  readonly rejected: string[] = [];
  private server: Server | undefined;
  port = 0;

  constructor(private readonly publicKeys: Map<string, KeyObject>) {}

  private authenticate(req: IncomingMessage, body: string): string | null {
    const h = (name: string): string => String(req.headers[name] ?? '');
    if (!/(^|;)version=1\.3(;|$)/.test(h('x-ops-sign'))) return 'unsupported X-Ops-Sign';
    if (!h('x-chef-version')) return 'no X-Chef-Version';
    if (h('accept') !== 'application/json') return 'Accept must be application/json';
    const key = this.publicKeys.get(h('x-ops-userid'));
    if (!key) return 'unknown client';
    const at = Date.parse(h('x-ops-timestamp'));
    if (
      !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(h('x-ops-timestamp')) ||
      Math.abs(Date.now() - at) > 15 * 60_000
    )
      return 'timestamp outside the 15 minute window';
    if (h('x-ops-content-hash') !== createHash('sha256').update(body).digest('base64'))
      return 'content hash mismatch';
    const parts: string[] = [];
    for (let n = 1; req.headers[`x-ops-authorization-${n}`] !== undefined; n++)
      parts.push(h(`x-ops-authorization-${n}`));
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const signed = [
      `Method:${req.method ?? ''}`,
      `Path:${path}`,
      `X-Ops-Content-Hash:${h('x-ops-content-hash')}`,
      'X-Ops-Sign:version=1.3',
      `X-Ops-Timestamp:${h('x-ops-timestamp')}`,
      `X-Ops-UserId:${h('x-ops-userid')}`,
      `X-Ops-Server-API-Version:${h('x-ops-server-api-version')}`,
    ].join('\n');
    const ok = createVerify('RSA-SHA256').update(signed).verify(key, parts.join(''), 'base64');
    return ok ? null : 'invalid signature';
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const refusal = this.authenticate(req, body);
        if (refusal) {
          this.rejected.push(refusal);
          res.writeHead(401, { 'www-authenticate': 'X-Ops-Sign version="1.3"' });
          return void res.end(JSON.stringify({ error: ["Invalid signature for user or client 'norm'"] }));
        }
        this.seen.push(`${req.method} ${req.url}`);
        const m = /^\/organizations\/acme\/(nodes|clients)\/([^/?]+)$/.exec(req.url ?? '');
        if (!m) return void res.writeHead(404).end('{"error":["not found"]}');
        const set = m[1] === 'nodes' ? this.nodes : this.clients;
        const name = decodeURIComponent(m[2] ?? '');
        if (req.method === 'GET') return void res.writeHead(set.has(name) ? 200 : 404).end('{}');
        if (req.method !== 'DELETE') return void res.writeHead(405).end();
        if (!set.delete(name))
          return void res.writeHead(404).end(`{"error":["Cannot load ${m[1]} ${name}"]}`);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name }));
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.port = (this.server?.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
  }
}

describe('ChefDeregistrar against a signature-verifying server', () => {
  const norm = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const dir = mkdtempSync(join(tmpdir(), 'norm-chef-'));
  const keyPath = join(dir, 'norm.pem');
  const wrongKeyPath = join(dir, 'stranger.pem');
  const ed25519Path = join(dir, 'ed25519.pem');
  writeFileSync(keyPath, norm.privateKey.export({ type: 'pkcs1', format: 'pem' }));
  writeFileSync(wrongKeyPath, stranger.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(
    ed25519Path,
    generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
  const server = new ChefServerStandIn(new Map([['norm', norm.publicKey]]));
  let clockSkewMs = 0;

  const deps = (over: Partial<DeregistrarFactoryDeps>): DeregistrarFactoryDeps => ({
    http: { post: () => Promise.reject(new Error('unused')) },
    commands: { run: () => Promise.reject(new Error('unused')) },
    clock: { now: () => new Date(Date.now() + clockSkewMs), sleep: () => Promise.resolve() },
    webhookSecret: undefined,
    chefClient: 'norm',
    chefKeyPath: keyPath,
    timeoutMs: 2000,
    ...over,
  });
  const build = (over: Partial<DeregistrarFactoryDeps> = {}): ChefDeregistrar =>
    buildDeregistrars(
      parseDeregistrationTargets(`chef:prod=http://127.0.0.1:${server.port}/organizations/acme`),
      deps(over),
    )[0] as ChefDeregistrar;

  beforeAll(() => server.start());
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('deletes the node, then the client; a second run is already absent', async () => {
    server.nodes.add('web-1');
    server.clients.add('web-1');
    server.nodes.add('web-10');
    const target = build();
    expect(target.name).toBe('chef:prod');
    expect(await target.testConnection()).toEqual({ ok: true, detail: 'HTTP 404' });
    expect(await target.deregister(event)).toEqual({ outcome: 'removed' });
    expect(server.seen.slice(-2)).toEqual([
      'DELETE /organizations/acme/nodes/web-1',
      'DELETE /organizations/acme/clients/web-1',
    ]);
    expect(await target.deregister(event)).toEqual({ outcome: 'absent' });
    expect([...server.nodes]).toEqual(['web-10']);
    expect(server.rejected).toEqual([]);
  });

  it('finishes the client when only the node was deleted before (a crash between the two)', async () => {
    server.clients.add('web-1');
    expect(await build().deregister(event)).toEqual({ outcome: 'removed' });
    expect(server.clients.has('web-1')).toBe(false);
  });

  it('a key the server does not know is a 401 failure that names the status, not the key', async () => {
    server.nodes.add('web-1');
    const target = build({ chefKeyPath: wrongKeyPath });
    const err = (await target.deregister(event).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^chef answered 401 to DELETE nodes\/web-1: .*Invalid signature/);
    expect(err.message).not.toMatch(/PRIVATE KEY|MII/);
    expect(server.rejected.at(-1)).toBe('invalid signature');
    expect(server.nodes.has('web-1')).toBe(true);
    expect(await target.testConnection()).toEqual({ ok: false, detail: 'HTTP 401' });
    server.nodes.delete('web-1');
  });

  it('signs the timestamp: a clock 20 minutes off is refused', async () => {
    clockSkewMs = -20 * 60_000;
    try {
      await expect(build().deregister(event)).rejects.toThrow('chef answered 401');
      expect(server.rejected.at(-1)).toBe('timestamp outside the 15 minute window');
    } finally {
      clockSkewMs = 0;
    }
  });

  it('describes itself without the key', () => {
    const text = JSON.stringify(build().describe());
    expect(JSON.parse(text)).toMatchObject({ kind: 'chef', organization: 'acme', client: 'norm' });
    expect(text).not.toMatch(/PRIVATE|norm\.pem/);
  });

  it('refuses to build without a client, a readable key, or with a non-RSA key', () => {
    expect(() => build({ chefClient: undefined })).toThrow('NORM_DEREGISTRATION_CHEF_CLIENT');
    expect(() => build({ chefKeyPath: undefined })).toThrow('needs NORM_DEREGISTRATION_CHEF_KEY_PATH');
    expect(() => build({ chefKeyPath: join(dir, 'missing.pem') })).toThrow(
      /cannot read .*missing\.pem \(ENOENT\)/,
    );
    expect(() => build({ chefKeyPath: ed25519Path })).toThrow('must be an RSA key');
  });

  it('parses only a server URL ending in /organizations/<org>', () => {
    expect(parseDeregistrationTargets('chef:a=https://chef.example/organizations/acme/')).toEqual([
      { kind: 'chef', name: 'a', serverUrl: 'https://chef.example', organization: 'acme' },
    ]);
    expect(() => parseDeregistrationTargets('chef:a=https://chef.example/')).toThrow('/organizations/<org>');
    expect(() => parseDeregistrationTargets('chef:a=ftp://chef.example/organizations/acme')).toThrow(
      '/organizations/<org>',
    );
  });
});
