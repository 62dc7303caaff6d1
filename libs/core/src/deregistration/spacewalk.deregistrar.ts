import { type Deregistrar, type DeregistrationEvent } from './deregistrar.port';
import { type HttpRequest, nodeHttpRequest } from './http-request';
import { decodeXmlRpcResponse, encodeXmlRpcCall, XmlRpcFault, type XmlRpcValue } from './xml-rpc.codec';

export interface SpacewalkDeregistrarOptions {
  name: string;
  /** The XML-RPC endpoint, e.g. `https://uyuni.example/rpc/api`. */
  apiUrl: string;
  username: string;
  password: string;
  timeoutMs: number;
}

/**
 * Spacewalk / Uyuni (and Red Hat Satellite 5, SUSE Manager): over the XML-RPC API,
 * `auth.login`, find the system profiles by name (`system.getId`, exact; else
 * `system.searchByName` for an FQDN profile `name.domain`), `system.deleteSystems` with their
 * ids, `auth.logout`. No profile of that name is already absent.
 */
export class SpacewalkDeregistrar implements Deregistrar {
  readonly name: string;

  constructor(
    private readonly options: SpacewalkDeregistrarOptions,
    private readonly http: HttpRequest = nodeHttpRequest,
  ) {
    this.name = `spacewalk:${options.name}`;
  }

  /**
   * One call. Errors name the method and the fault or status, never a parameter: the password
   * travels in auth.login's and the session key in every other call's, so both are also
   * scrubbed from whatever text a server sends back.
   */
  private async rpc(method: string, params: XmlRpcValue[], sessionKey?: string): Promise<XmlRpcValue> {
    const scrub = (text: string): string => {
      let out = text;
      for (const secret of [this.options.password, sessionKey])
        if (secret) out = out.split(secret).join('[redacted]');
      return out;
    };
    const res = await this.http(this.options.apiUrl, {
      method: 'POST',
      headers: { 'content-type': 'text/xml', accept: 'text/xml' },
      body: encodeXmlRpcCall(method, params),
      timeoutMs: this.options.timeoutMs,
    });
    if (res.status !== 200)
      throw new Error(`spacewalk answered ${res.status} to ${method}: ${scrub(res.body.slice(0, 300))}`);
    try {
      return decodeXmlRpcResponse(res.body);
    } catch (err) {
      if (err instanceof XmlRpcFault) throw new XmlRpcFault(err.faultCode, scrub(err.faultString));
      // No `cause`: the original carries the server's unscrubbed text.
      // eslint-disable-next-line preserve-caught-error
      throw new Error(`spacewalk ${method}: ${scrub(err instanceof Error ? err.message : String(err))}`);
    }
  }

  private async login(): Promise<string> {
    try {
      const key = await this.rpc('auth.login', [this.options.username, this.options.password]);
      if (typeof key !== 'string' || !key) throw new Error('spacewalk auth.login returned no session key');
      return key;
    } catch (err) {
      if (err instanceof XmlRpcFault) throw new Error(`spacewalk auth.login ${err.message}`, { cause: err });
      throw err;
    }
  }

  private async withSession<T>(work: (key: string) => Promise<T>): Promise<T> {
    const key = await this.login();
    try {
      return await work(key);
    } finally {
      // A session left behind expires on its own; a failed logout must not hide the real outcome.
      await this.rpc('auth.logout', [key], key).catch(() => undefined);
    }
  }

  private async call(method: string, key: string, params: XmlRpcValue[]): Promise<XmlRpcValue> {
    try {
      return await this.rpc(method, [key, ...params], key);
    } catch (err) {
      if (err instanceof XmlRpcFault) throw new Error(`spacewalk ${method} ${err.message}`, { cause: err });
      throw err;
    }
  }

  private async systemIds(key: string, hostname: string): Promise<number[]> {
    const exact = idsOf(await this.call('system.getId', key, [hostname]), (n) => n === hostname);
    if (exact.length > 0) return exact;
    // Profiles are usually named by the FQDN the client registered with.
    const escaped = hostname.replace(/[^A-Za-z0-9]/g, (c) => `\\${c}`);
    return idsOf(await this.call('system.searchByName', key, [`^${escaped}\\.`]), (n) =>
      n.startsWith(`${hostname}.`),
    );
  }

  async deregister(event: DeregistrationEvent): Promise<{ outcome: 'removed' | 'absent' }> {
    return this.withSession(async (key) => {
      const ids = await this.systemIds(key, event.name);
      if (ids.length === 0) return { outcome: 'absent' as const };
      const result = await this.call('system.deleteSystems', key, [ids]);
      if (result !== 1) throw new Error(`spacewalk system.deleteSystems returned ${JSON.stringify(result)}`);
      return { outcome: 'removed' as const };
    });
  }

  /** Logs in and out: proves the endpoint, the TLS trust and the credentials. */
  async testConnection(): Promise<{ ok: boolean; detail: string }> {
    try {
      await this.withSession(() => Promise.resolve());
      return { ok: true, detail: 'logged in' };
    } catch (err) {
      return { ok: false, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  describe(): Record<string, unknown> {
    return { kind: 'spacewalk', name: this.name, apiUrl: this.options.apiUrl, user: this.options.username };
  }
}

/** Ids of the returned systems whose name passes `keep` (a search is a regexp; names are checked again). */
function idsOf(result: XmlRpcValue, keep: (name: string) => boolean): number[] {
  if (!Array.isArray(result)) throw new Error('spacewalk returned a non-array system list');
  const ids: number[] = [];
  for (const s of result) {
    if (typeof s !== 'object' || s === null || Array.isArray(s)) continue;
    if (typeof s.id === 'number' && typeof s.name === 'string' && keep(s.name)) ids.push(s.id);
  }
  return ids;
}
