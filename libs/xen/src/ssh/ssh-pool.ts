import { type HostEndpoint } from '@norm/core';
import { SshHostConnection, type ConnectionStats } from './ssh-host-connection';
import { type SshTransportOptions } from './ssh-options';
import { hostUnreachable } from './transport-errors';

/**
 * One pooled connection per host endpoint. Connections are keyed by everything that
 * defines them (address, port, user, pinned key, sudo): re-registering a host with a new
 * key yields a new connection, and the superseded one closes itself once idle.
 */
export class SshPool {
  private readonly connections = new Map<string, SshHostConnection>();
  private closed = false;

  constructor(readonly options: SshTransportOptions) {}

  forHost(endpoint: HostEndpoint): SshHostConnection {
    if (this.closed) throw hostUnreachable(endpoint.name, 'transport closed');
    const key = endpointKey(endpoint);
    let connection = this.connections.get(key);
    if (!connection) {
      connection = new SshHostConnection({ ...endpoint }, this.options);
      this.connections.set(key, connection);
    }
    return connection;
  }

  stats(): Array<{ host: string } & ConnectionStats> {
    return [...this.connections.values()].map((c) => ({ host: c.hostName, ...c.stats() }));
  }

  /** Ends every connection and fails whatever is queued or running; safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}

function endpointKey(e: HostEndpoint): string {
  return JSON.stringify([e.name, e.address, e.port, e.user, e.hostKeyFingerprint, e.sudo]);
}
