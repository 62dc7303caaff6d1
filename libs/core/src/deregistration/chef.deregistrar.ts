import { createHash, createSign, type KeyObject } from 'node:crypto';
import { type Clock } from '../ports';
import { type Deregistrar, type DeregistrationEvent } from './deregistrar.port';
import { type HttpRequest, nodeHttpRequest } from './http-request';

/** Chef Infra Server API version sent in, and signed as, `X-Ops-Server-API-Version`. */
export const CHEF_SERVER_API_VERSION = '1';
/** The client version Norm claims; Chef Infra Server 12+ accepts any 12+ client on API version 1. */
export const CHEF_CLIENT_VERSION = '18.0.0';

/** Chef's canonical path: no repeated slashes, no trailing slash except for `/`, no query. */
export function chefCanonicalPath(path: string): string {
  const p = (path.split('?')[0] ?? '').replace(/\/+/g, '/');
  return p.length > 1 ? p.replace(/\/$/, '') : p || '/';
}

/** Chef's timestamp: ISO-8601 UTC to the second (`2013-03-10T14:14:44Z`). */
export function chefTimestamp(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The string a v1.3 request signs (Chef RFC 065): lines joined by `\n`, none after the last.
 * The server rebuilds it from the headers and the body it received, so every field must be
 * exactly what is sent.
 */
export function chefStringToSign(r: {
  method: string;
  path: string;
  contentHash: string;
  timestamp: string;
  userId: string;
}): string {
  return [
    `Method:${r.method.toUpperCase()}`,
    `Path:${chefCanonicalPath(r.path)}`,
    `X-Ops-Content-Hash:${r.contentHash}`,
    'X-Ops-Sign:version=1.3',
    `X-Ops-Timestamp:${r.timestamp}`,
    `X-Ops-UserId:${r.userId}`,
    `X-Ops-Server-API-Version:${CHEF_SERVER_API_VERSION}`,
  ].join('\n');
}

/**
 * The authentication headers of a Chef v1.3 request: RSASSA-PKCS1-v1_5 with SHA-256 over the
 * string to sign, base64, cut into 60-character `X-Ops-Authorization-N` headers.
 */
export function chefSignedHeaders(r: {
  method: string;
  path: string;
  body: string;
  userId: string;
  at: Date;
  key: KeyObject;
}): Record<string, string> {
  const contentHash = createHash('sha256').update(r.body).digest('base64');
  const timestamp = chefTimestamp(r.at);
  const signature = createSign('RSA-SHA256')
    .update(chefStringToSign({ method: r.method, path: r.path, contentHash, timestamp, userId: r.userId }))
    .sign(r.key, 'base64');
  const headers: Record<string, string> = {
    'x-ops-sign': 'algorithm=sha256;version=1.3',
    'x-ops-userid': r.userId,
    'x-ops-timestamp': timestamp,
    'x-ops-content-hash': contentHash,
    'x-ops-server-api-version': CHEF_SERVER_API_VERSION,
  };
  for (let i = 0; i * 60 < signature.length; i++) {
    headers[`x-ops-authorization-${i + 1}`] = signature.slice(i * 60, (i + 1) * 60);
  }
  return headers;
}

export interface ChefDeregistrarOptions {
  name: string;
  /** The server's origin, e.g. `https://chef.example`. */
  serverUrl: string;
  organization: string;
  /** The API client Norm signs as; it needs delete on the org's nodes and clients. */
  clientName: string;
  /** That client's RSA private key. */
  key: KeyObject;
  timeoutMs: number;
}

/**
 * Chef Infra Server: deletes the node and the API client of the same name
 * (`DELETE /organizations/{org}/nodes/{name}` and `/clients/{name}`), so neither a search nor
 * the machine's old key still finds it. 200 deleted, 404 already absent; both absent is absent.
 */
export class ChefDeregistrar implements Deregistrar {
  readonly name: string;

  constructor(
    private readonly options: ChefDeregistrarOptions,
    private readonly clock: Clock,
    private readonly http: HttpRequest = nodeHttpRequest,
  ) {
    this.name = `chef:${options.name}`;
  }

  private async call(method: string, suffix: string): Promise<{ status: number; body: string }> {
    const path = `/organizations/${encodeURIComponent(this.options.organization)}${suffix}`;
    return this.http(`${this.options.serverUrl}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        'x-chef-version': CHEF_CLIENT_VERSION,
        ...chefSignedHeaders({
          method,
          path,
          body: '',
          userId: this.options.clientName,
          at: this.clock.now(),
          key: this.options.key,
        }),
      },
      timeoutMs: this.options.timeoutMs,
    });
  }

  async deregister(event: DeregistrationEvent): Promise<{ outcome: 'removed' | 'absent' }> {
    let removed = false;
    // The node first: it is what searches and dashboards show; the client only authenticates.
    for (const kind of ['nodes', 'clients'] as const) {
      const res = await this.call('DELETE', `/${kind}/${encodeURIComponent(event.name)}`);
      if (res.status === 200 || res.status === 204) removed = true;
      else if (res.status !== 404)
        throw new Error(
          `chef answered ${res.status} to DELETE ${kind}/${event.name}: ${res.body.slice(0, 300)}`,
        );
    }
    return { outcome: removed ? 'removed' : 'absent' };
  }

  /**
   * Reads one node that need not exist: 404 and 200 both prove the server verified the
   * signature (a bad key is 401, a client without read on nodes 403), without listing the org.
   */
  async testConnection(): Promise<{ ok: boolean; detail: string }> {
    try {
      const res = await this.call('GET', '/nodes/norm-connection-test');
      return { ok: res.status === 200 || res.status === 404, detail: `HTTP ${res.status}` };
    } catch (err) {
      return { ok: false, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  describe(): Record<string, unknown> {
    return {
      kind: 'chef',
      name: this.name,
      serverUrl: this.options.serverUrl,
      organization: this.options.organization,
      client: this.options.clientName,
      signing: 'v1.3 rsa-sha256',
    };
  }
}
