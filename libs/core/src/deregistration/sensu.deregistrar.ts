import { type Deregistrar, type DeregistrationEvent } from './deregistrar.port';
import { type HttpRequest, nodeHttpRequest } from './http-request';

export interface SensuDeregistrarOptions {
  name: string;
  /** Sensu Go backend API, e.g. `https://sensu.example:8080`. */
  apiUrl: string;
  namespace: string;
  /** A Sensu API key (`sensuctl api-key grant`), sent as `Authorization: Key <key>`. */
  apiKey: string;
  timeoutMs: number;
}

/**
 * Sensu Go: `DELETE /api/core/v2/namespaces/{namespace}/entities/{name}` (204 deleted, 404
 * already absent), so the entity's keepalive stops alerting on a machine that is gone.
 */
export class SensuDeregistrar implements Deregistrar {
  readonly name: string;

  constructor(
    private readonly options: SensuDeregistrarOptions,
    private readonly http: HttpRequest = nodeHttpRequest,
  ) {
    this.name = `sensu:${options.name}`;
  }

  private url(path: string): string {
    return `${this.options.apiUrl.replace(/\/$/, '')}/api/core/v2/namespaces/${encodeURIComponent(this.options.namespace)}${path}`;
  }

  async deregister(event: DeregistrationEvent): Promise<{ outcome: 'removed' | 'absent' }> {
    const res = await this.http(this.url(`/entities/${encodeURIComponent(event.name)}`), {
      method: 'DELETE',
      headers: { authorization: `Key ${this.options.apiKey}` },
      timeoutMs: this.options.timeoutMs,
    });
    if (res.status === 204 || res.status === 200) return { outcome: 'removed' };
    if (res.status === 404) return { outcome: 'absent' };
    throw new Error(`sensu answered ${res.status}: ${res.body.slice(0, 300)}`);
  }

  async testConnection(): Promise<{ ok: boolean; detail: string }> {
    try {
      const res = await this.http(this.url('/entities?limit=1'), {
        method: 'GET',
        headers: { authorization: `Key ${this.options.apiKey}` },
        timeoutMs: this.options.timeoutMs,
      });
      return { ok: res.status === 200, detail: `HTTP ${res.status}` };
    } catch (err) {
      return { ok: false, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  describe(): Record<string, unknown> {
    return { kind: 'sensu', name: this.name, apiUrl: this.options.apiUrl, namespace: this.options.namespace };
  }
}
