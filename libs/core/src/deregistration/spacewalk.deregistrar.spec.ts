import { XMLParser } from 'fast-xml-parser';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type DeregistrationEvent } from './deregistrar.port';
import {
  buildDeregistrars,
  type DeregistrarFactoryDeps,
  parseDeregistrationTargets,
} from './deregistration-targets';
import { type SpacewalkDeregistrar } from './spacewalk.deregistrar';

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

const PASSWORD = 's3cret-pa55';

type Param = string | number | Param[];

// The stand-in reads calls with its own parser, not Norm's codec, so the two cannot agree on a mistake.
const callParser = new XMLParser({
  parseTagValue: false,
  trimValues: false,
  isArray: (_name, jpath) => String(jpath).endsWith('params.param') || String(jpath).endsWith('data.value'),
});

function paramOf(value: Record<string, unknown>): Param {
  if (typeof value.string === 'string') return value.string;
  if (typeof value.int === 'string') return Number(value.int);
  const array = value.array as { data: { value?: Record<string, unknown>[] } } | undefined;
  if (array) return (array.data.value ?? []).map(paramOf);
  throw new Error(`unexpected parameter ${JSON.stringify(value)}`);
}

const respond = (res: ServerResponse, value: string): void =>
  void res
    .writeHead(200, { 'content-type': 'text/xml' })
    .end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<methodResponse><params><param><value>${value}</value></param></params></methodResponse>\n`,
    );

const fault = (res: ServerResponse, code: number, text: string): void =>
  void res
    .writeHead(200, { 'content-type': 'text/xml' })
    .end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>${code}</int></value></member><member><name>faultString</name><value><string>${text}</string></value></member></struct></value></fault></methodResponse>\n`,
    );

const systemsXml = (systems: { id: number; name: string }[]): string =>
  `<array><data>${systems
    .map(
      (s) =>
        `<value><struct><member><name>id</name><value><i4>${s.id}</i4></value></member><member><name>name</name><value><string>${s.name}</string></value></member><member><name>last_checkin</name><value><dateTime.iso8601>20260101T10:00:00</dateTime.iso8601></value></member></struct></value>`,
    )
    .join('')}</data></array>`;

/**
 * An Uyuni XML-RPC stand-in at /rpc/api: it checks each call's method and parameter types as
 * the API documents them, keeps sessions and system profiles, and answers with the documented
 * values (a session key string, arrays of system structs, int 1) or faults.
 */
class UyuniStandIn {
  readonly systems = new Map<number, string>();
  readonly sessions = new Set<string>();
  readonly calls: string[] = [];
  /** Injected misbehaviour for the failure tests. */
  mode: 'ok' | 'echo-secrets' | 'bad-gateway' | 'hang' = 'ok';
  private server: Server | undefined;
  private nextSession = 1;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () =>
        this.handle(req.method ?? '', req.url ?? '', req.headers['content-type'], body, res),
      );
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.port = (this.server?.address() as AddressInfo).port;
  }

  private handle(
    method: string,
    url: string,
    type: string | undefined,
    body: string,
    res: ServerResponse,
  ): void {
    if (this.mode === 'hang') return;
    if (this.mode === 'bad-gateway') return void res.writeHead(502).end('<html>502 Bad Gateway</html>');
    if (method !== 'POST' || url !== '/rpc/api' || type !== 'text/xml') return void res.writeHead(404).end();
    const call = (
      callParser.parse(body) as {
        methodCall: { methodName: string; params?: { param: { value: Record<string, unknown> }[] } };
      }
    ).methodCall;
    const params = (call.params?.param ?? []).map((p) => paramOf(p.value));
    this.calls.push(call.methodName);
    const [key, arg] = params;
    if (call.methodName === 'auth.login') {
      if (params.length !== 2 || params.some((p) => typeof p !== 'string'))
        return fault(res, -1, 'bad params');
      if (key !== 'norm' || arg !== PASSWORD)
        return fault(res, 2950, 'redstone.xmlrpc.XmlRpcFault: Either the password or username is incorrect.');
      const session = `${this.nextSession++}x7f3a9c0e5b2d4e6f8a1b3c5d7e9f0a2b`;
      this.sessions.add(session);
      return respond(res, `<string>${session}</string>`);
    }
    if (typeof key !== 'string' || !this.sessions.has(key)) return fault(res, 2950, 'Could not find session');
    switch (call.methodName) {
      case 'auth.logout':
        this.sessions.delete(key);
        return respond(res, '<i4>1</i4>');
      case 'system.getId': {
        if (params.length !== 2 || typeof arg !== 'string') return fault(res, -1, 'bad params');
        return respond(
          res,
          systemsXml([...this.systems].filter(([, n]) => n === arg).map(([id, name]) => ({ id, name }))),
        );
      }
      case 'system.searchByName': {
        if (params.length !== 2 || typeof arg !== 'string') return fault(res, -1, 'bad params');
        const re = new RegExp(arg);
        return respond(
          res,
          systemsXml([...this.systems].filter(([, n]) => re.test(n)).map(([id, name]) => ({ id, name }))),
        );
      }
      case 'system.deleteSystems': {
        if (params.length !== 2 || !Array.isArray(arg) || arg.some((id) => typeof id !== 'number'))
          return fault(res, -1, 'bad params');
        if (this.mode === 'echo-secrets')
          return fault(res, -1, `internal error for session ${key}, login norm/${PASSWORD}`);
        const ids = arg as number[];
        if (ids.some((id) => !this.systems.has(id))) return fault(res, -210, 'No such system');
        for (const id of ids) this.systems.delete(id);
        return respond(res, '<i4>1</i4>');
      }
      default:
        return fault(res, -1, `Could not find method ${call.methodName}`);
    }
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}

describe('SpacewalkDeregistrar against an XML-RPC stand-in', () => {
  const uyuni = new UyuniStandIn();
  const deps = (over: Partial<DeregistrarFactoryDeps>): DeregistrarFactoryDeps => ({
    http: { post: () => Promise.reject(new Error('unused')) },
    commands: { run: () => Promise.reject(new Error('unused')) },
    clock: { now: () => new Date(), sleep: () => Promise.resolve() },
    webhookSecret: undefined,
    spacewalkUser: 'norm',
    spacewalkPassword: PASSWORD,
    timeoutMs: 2000,
    ...over,
  });
  const build = (over: Partial<DeregistrarFactoryDeps> = {}): SpacewalkDeregistrar =>
    buildDeregistrars(
      parseDeregistrationTargets(`spacewalk:uyuni=http://127.0.0.1:${uyuni.port}`),
      deps(over),
    )[0] as SpacewalkDeregistrar;

  beforeAll(() => uyuni.start());
  afterAll(() => uyuni.stop());
  beforeEach(() => {
    uyuni.mode = 'ok';
    uyuni.calls.length = 0;
    uyuni.systems.clear();
  });

  it('finds the FQDN profile, deletes it and logs out; a second run is already absent', async () => {
    uyuni.systems.set(1000010001, 'web-1.example.com');
    uyuni.systems.set(1000010002, 'web-10.example.com');
    uyuni.systems.set(1000010003, 'web-1x');
    const target = build();
    expect(await target.deregister(event)).toEqual({ outcome: 'removed' });
    expect(uyuni.calls).toEqual([
      'auth.login',
      'system.getId',
      'system.searchByName',
      'system.deleteSystems',
      'auth.logout',
    ]);
    expect([...uyuni.systems.values()]).toEqual(['web-10.example.com', 'web-1x']);
    uyuni.calls.length = 0;
    expect(await target.deregister(event)).toEqual({ outcome: 'absent' });
    expect(uyuni.calls).toEqual(['auth.login', 'system.getId', 'system.searchByName', 'auth.logout']);
    expect(uyuni.sessions.size).toBe(0);
  });

  it('an exact profile name is enough (no search), and duplicates all go', async () => {
    uyuni.systems.set(1, 'web-1');
    uyuni.systems.set(2, 'web-1');
    expect(await build().deregister(event)).toEqual({ outcome: 'removed' });
    expect(uyuni.calls).toEqual(['auth.login', 'system.getId', 'system.deleteSystems', 'auth.logout']);
    expect(uyuni.systems.size).toBe(0);
  });

  it('a wrong password is the fault, without the password', async () => {
    uyuni.systems.set(1, 'web-1');
    const target = build({ spacewalkPassword: 'wrong-password' });
    const err = (await target.deregister(event).catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(
      'spacewalk auth.login fault 2950: redstone.xmlrpc.XmlRpcFault: Either the password or username is incorrect.',
    );
    expect(uyuni.calls).toEqual(['auth.login']);
    const probe = await target.testConnection();
    expect(probe.ok).toBe(false);
    expect(probe.detail).toContain('fault 2950');
  });

  it('scrubs the password and the session key from what the server sends back, and still logs out', async () => {
    uyuni.systems.set(1, 'web-1');
    uyuni.mode = 'echo-secrets';
    const err = (await build()
      .deregister(event)
      .catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(
      'spacewalk system.deleteSystems fault -1: internal error for session [redacted], login norm/[redacted]',
    );
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toMatch(/s3cret|x7f3a9c/);
    expect(uyuni.calls.at(-1)).toBe('auth.logout');
    expect(uyuni.sessions.size).toBe(0);
  });

  it('an HTTP error carries the status; a hung server times out', async () => {
    uyuni.mode = 'bad-gateway';
    await expect(build().deregister(event)).rejects.toThrow(
      'spacewalk answered 502 to auth.login: <html>502 Bad Gateway</html>',
    );
    uyuni.mode = 'hang';
    const started = Date.now();
    await expect(build({ timeoutMs: 300 }).deregister(event)).rejects.toThrow(
      `POST http://127.0.0.1:${uyuni.port}/rpc/api timed out after 300 ms`,
    );
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('tests the connection by logging in and out; describes itself without the password', async () => {
    const target = build();
    expect(await target.testConnection()).toEqual({ ok: true, detail: 'logged in' });
    expect(uyuni.calls).toEqual(['auth.login', 'auth.logout']);
    expect(target.describe()).toEqual({
      kind: 'spacewalk',
      name: 'spacewalk:uyuni',
      apiUrl: `http://127.0.0.1:${uyuni.port}/rpc/api`,
      user: 'norm',
    });
  });

  it('needs both credentials; parses a bare server as its /rpc/api', () => {
    expect(() => build({ spacewalkPassword: undefined })).toThrow('NORM_DEREGISTRATION_SPACEWALK_PASSWORD');
    expect(
      parseDeregistrationTargets('spacewalk:s=https://uyuni.example;spacewalk:t=https://sw.example/rpc/api'),
    ).toEqual([
      { kind: 'spacewalk', name: 's', apiUrl: 'https://uyuni.example/rpc/api' },
      { kind: 'spacewalk', name: 't', apiUrl: 'https://sw.example/rpc/api' },
    ]);
    expect(() => parseDeregistrationTargets('spacewalk:s=https://admin:pw@uyuni.example')).toThrow(
      'without credentials',
    );
  });
});
