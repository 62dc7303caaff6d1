import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Upstream {
  host: string;
  port: number;
}

/**
 * A loopback TCP proxy in front of a shared server (Postgres, Redis) whose link can be cut
 * and restored. Cutting resets every live connection and every new one, which is what a
 * client sees when the server crashes or its host drops off the network, without stopping
 * the server that other tests share.
 */
export class TcpProxy {
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private up = true;

  private constructor(
    private readonly server: Server,
    private readonly upstream: Upstream,
    readonly port: number,
  ) {}

  /** Listens on a free loopback port and forwards to `upstream`. */
  static async start(upstream: Upstream): Promise<TcpProxy> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    const proxy = new TcpProxy(server, upstream, address.port);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  /** `url` with its host and port replaced by this proxy's. */
  urlFor(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  get isUp(): boolean {
    return this.up;
  }

  /** Live proxied connections. */
  get connections(): number {
    return this.pairs.size;
  }

  /** Resets every live connection and refuses (resets) new ones until `restore()`. */
  cut(): void {
    this.up = false;
    for (const pair of this.pairs) this.drop(pair);
  }

  restore(): void {
    this.up = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (!this.up) {
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = connect({ host: this.upstream.host, port: this.upstream.port, noDelay: true });
    const pair = { client, upstream };
    this.pairs.add(pair);
    // Either side failing or closing takes the other down, as a real broken link would.
    const end = (): void => this.drop(pair);
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private drop(pair: { client: Socket; upstream: Socket }): void {
    if (!this.pairs.delete(pair)) return;
    // RST rather than FIN: a crashed peer does not say goodbye.
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy();
  }
}
