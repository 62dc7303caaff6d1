import { type Clock } from '../ports';
import { type Deregistrar, type DeregistrationEvent } from './deregistrar.port';
import { type HttpRequest, nodeHttpRequest, type TlsClientOptions } from './http-request';

export interface PuppetDeregistrarOptions {
  name: string;
  /** Puppet Server's CA API origin, e.g. `https://puppet.example:8140`; unset skips the CA. */
  caUrl?: string | undefined;
  /** PuppetDB's origin, e.g. `https://puppetdb.example:8081`; unset skips PuppetDB. */
  puppetdbUrl?: string | undefined;
  /**
   * The client certificate and key Norm presents, and the Puppet CA certificate that alone is
   * trusted for the servers. The certificate must be allowed by the CA's auth.conf (the
   * `pp_cli_auth` extension) and by PuppetDB's certificate allow-list.
   */
  tls: Required<TlsClientOptions>;
  timeoutMs: number;
}

/**
 * Puppet: cleans the node's certificate on the CA (revoke, then delete, as
 * `puppetserver ca clean` does) and deactivates the node in PuppetDB, so its exported
 * resources leave other nodes' catalogs. A certificate or node the servers do not know is
 * already absent; a certificate that can no longer be revoked (already revoked, or only a
 * request) still has its files deleted.
 */
export class PuppetDeregistrar implements Deregistrar {
  readonly name: string;

  constructor(
    private readonly options: PuppetDeregistrarOptions,
    private readonly clock: Clock,
    private readonly http: HttpRequest = nodeHttpRequest,
  ) {
    this.name = `puppet:${options.name}`;
  }

  private call(
    base: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: string }> {
    return this.http(`${base}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      tls: this.options.tls,
      timeoutMs: this.options.timeoutMs,
    });
  }

  async deregister(event: DeregistrationEvent): Promise<{ outcome: 'removed' | 'absent' }> {
    const certname = event.name;
    let removed = false;
    if (this.options.caUrl) removed = (await this.cleanCertificate(this.options.caUrl, certname)) || removed;
    if (this.options.puppetdbUrl)
      removed = (await this.deactivateNode(this.options.puppetdbUrl, certname)) || removed;
    return { outcome: removed ? 'removed' : 'absent' };
  }

  private async cleanCertificate(caUrl: string, certname: string): Promise<boolean> {
    const path = `/puppet-ca/v1/certificate_status/${encodeURIComponent(certname)}`;
    const revoke = await this.call(caUrl, 'PUT', path, { desired_state: 'revoked' });
    // 404: the CA has neither a certificate nor a request of that name; nothing to delete.
    if (revoke.status === 404) return false;
    // 409: not in a revocable state (revoked by an earlier attempt, or never signed).
    if (!ok(revoke.status) && revoke.status !== 409) throw answered('puppet CA', revoke, `PUT ${path}`);
    const del = await this.call(caUrl, 'DELETE', path);
    if (del.status === 404) return ok(revoke.status);
    if (!ok(del.status)) throw answered('puppet CA', del, `DELETE ${path}`);
    return true;
  }

  private async deactivateNode(puppetdbUrl: string, certname: string): Promise<boolean> {
    // PuppetDB accepts a deactivate for any name, so ask first: the outcome stays truthful and
    // a node already deactivated keeps its original deactivation time.
    const node = await this.call(puppetdbUrl, 'GET', `/pdb/query/v4/nodes/${encodeURIComponent(certname)}`);
    if (node.status === 404) return false;
    if (!ok(node.status)) throw answered('puppetdb', node, 'GET /pdb/query/v4/nodes');
    if (isDeactivated(node.body)) return false;
    const producerTimestamp = this.clock.now().toISOString();
    const query = new URLSearchParams({
      command: 'deactivate_node',
      version: '3',
      certname,
      'producer-timestamp': producerTimestamp,
    });
    const res = await this.call(puppetdbUrl, 'POST', `/pdb/cmd/v1?${query.toString()}`, {
      command: 'deactivate node',
      version: 3,
      payload: { certname, producer_timestamp: producerTimestamp },
    });
    if (!ok(res.status)) throw answered('puppetdb', res, 'POST /pdb/cmd/v1');
    return true;
  }

  /** Reads a certificate status that need not exist (404 proves auth.conf lets Norm in) and PuppetDB's version. */
  async testConnection(): Promise<{ ok: boolean; detail: string }> {
    const details: string[] = [];
    let allOk = true;
    try {
      if (this.options.caUrl) {
        const r = await this.call(
          this.options.caUrl,
          'GET',
          '/puppet-ca/v1/certificate_status/norm-connection-test',
        );
        allOk &&= r.status === 200 || r.status === 404;
        details.push(`CA HTTP ${r.status}`);
      }
      if (this.options.puppetdbUrl) {
        const r = await this.call(this.options.puppetdbUrl, 'GET', '/pdb/meta/v1/version');
        allOk &&= r.status === 200;
        details.push(`PuppetDB HTTP ${r.status}`);
      }
      return { ok: allOk, detail: details.join(', ') };
    } catch (err) {
      details.push(err instanceof Error ? err.message : String(err));
      return { ok: false, detail: details.join(', ') };
    }
  }

  describe(): Record<string, unknown> {
    return {
      kind: 'puppet',
      name: this.name,
      caUrl: this.options.caUrl ?? null,
      puppetdbUrl: this.options.puppetdbUrl ?? null,
      auth: 'client certificate',
    };
  }
}

function ok(status: number): boolean {
  return status >= 200 && status < 300;
}

function answered(who: string, res: { status: number; body: string }, what: string): Error {
  return new Error(`${who} answered ${res.status} to ${what}: ${res.body.slice(0, 300)}`);
}

function isDeactivated(body: string): boolean {
  try {
    const node = JSON.parse(body) as { deactivated?: unknown; expired?: unknown };
    return (
      (node.deactivated !== null && node.deactivated !== undefined) ||
      (node.expired !== null && node.expired !== undefined)
    );
  } catch {
    return false;
  }
}
