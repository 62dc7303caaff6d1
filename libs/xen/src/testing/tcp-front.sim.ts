import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP front door for one simulated host: it owns the host's public port and relays each
 * connection to the real SSH server behind it (ssh2 or sshd). Owning the socket pair is what
 * lets tests cut connections, refuse TCP (host down) or stall them with the connection still
 * up (host hangs) identically for both server kinds.
 */
export class TcpFront {
  private server?: Server;
  private port = 0;
  private down = false;
  private hung = false;
  private readonly pairs = new Set<{ client: Socket; upstream?: Socket }>();

  constructor(
    private upstreamPort: () => number,
    private readonly host = '127.0.0.1',
  ) {}

  get listenPort(): number {
    return this.port;
  }

  async listen(port = 0): Promise<number> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected listen address');
    this.server = server;
    this.port = addr.port;
    return this.port;
  }

  private accept(client: Socket): void {
    // The relay must not add latency a real host has not: without TCP_NODELAY each small
    // relayed SSH packet can wait ~40 ms for a delayed ACK.
    client.setNoDelay(true);
    const pair: { client: Socket; upstream?: Socket } = { client };
    this.pairs.add(pair);
    client.on('error', () => {});
    client.on('close', () => {
      pair.upstream?.destroy();
      this.pairs.delete(pair);
    });
    client.pause();
    if (!this.hung) this.connectUpstream(pair);
  }

  private connectUpstream(pair: { client: Socket; upstream?: Socket }): void {
    const upstream = connect(this.upstreamPort(), this.host);
    upstream.setNoDelay(true);
    pair.upstream = upstream;
    upstream.on('error', () => pair.client.destroy());
    upstream.on('close', () => pair.client.destroy());
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
    if (this.hung) {
      pair.client.pause();
      upstream.pause();
    } else {
      pair.client.resume();
    }
  }

  /** Cuts every open connection now. */
  dropAll(): void {
    for (const pair of [...this.pairs]) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    this.pairs.clear();
  }

  /** Down: stop listening (connects get ECONNREFUSED) and cut open connections. Up: listen again on the same port. */
  async setDown(down: boolean): Promise<void> {
    if (down === this.down) return;
    this.down = down;
    if (down) {
      this.dropAll();
      const server = this.server;
      this.server = undefined;
      if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    } else {
      await this.listen(this.port);
    }
  }

  /** Hung: nothing is read from or relayed to either side; TCP connections stay established. */
  setHung(hung: boolean): void {
    this.hung = hung;
    for (const pair of this.pairs) {
      if (hung) {
        pair.client.pause();
        pair.upstream?.pause();
      } else if (pair.upstream) {
        pair.client.resume();
        pair.upstream.resume();
      } else {
        this.connectUpstream(pair);
      }
    }
  }

  setUpstream(port: () => number): void {
    this.upstreamPort = port;
  }

  async close(): Promise<void> {
    this.dropAll();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
