import { timingSafeEqual } from 'node:crypto';
import { type AddressInfo } from 'node:net';
import { Server, utils, type Connection, type ParsedKey } from 'ssh2';
import { generateEd25519, type SimKeyPair } from './host-key.sim';
import { attachSftpHandler } from './sftp-sim.handler';
import { splitShellWords } from './shell-words.sim';
import { TcpFront } from './tcp-front.sim';
import { SimConnectionDropped, type SimulatedXenHost } from './xen-host.sim';

/**
 * An in-process SSH server (ssh2) in front of one SimulatedXenHost: its own ed25519 host
 * key, publickey auth for one user and key, `exec` channels whose command line is split like
 * a POSIX shell would split it, the `sftp` subsystem over the host's MemoryFs, and sshd's
 * MaxSessions cap. A TcpFront owns the public port so network faults work.
 */
export interface InProcessSshOptions {
  host: SimulatedXenHost;
  user: string;
  /** authorized_keys line (or key text) of the one client key allowed in. */
  clientPublicKey: string;
  /** sshd's MaxSessions: session channels allowed open at once per connection. */
  maxSessions?: number;
  /** Public port to listen on (0 = any free port). */
  port?: number;
  /** A host key to keep across restarts (the demo's hosts keep their identity); default: a new one. */
  hostKey?: SimKeyPair;
}

export class InProcessSshServer {
  hostKey: SimKeyPair;
  private server?: Server;
  private internalPort = 0;
  private readonly front: TcpFront;
  private readonly clientKey: ParsedKey;
  private readonly connections = new Set<Connection>();

  constructor(private readonly opts: InProcessSshOptions) {
    this.hostKey = opts.hostKey ?? generateEd25519(`root@${opts.host.hostname}`);
    const parsed = utils.parseKey(opts.clientPublicKey);
    if (parsed instanceof Error) throw parsed;
    this.clientKey = parsed;
    this.front = new TcpFront(() => this.internalPort);
  }

  get port(): number {
    return this.front.listenPort;
  }

  async start(): Promise<number> {
    await this.startInternal();
    const port = await this.front.listen(this.opts.port ?? 0);
    this.opts.host.faults.attachNetwork({
      dropConnections: () => this.front.dropAll(),
      setDown: (down) => this.front.setDown(down),
      setHung: (hung) => this.front.setHung(hung),
      changeHostKey: () => this.rekey(),
    });
    this.opts.host.onDropRequested(() => this.front.dropAll());
    return port;
  }

  private async startInternal(): Promise<void> {
    const server = new Server(
      { hostKeys: [this.hostKey.privateKey], ident: 'OpenSSH_9.2p1 Debian-2+deb12u6' },
      (client) => this.onClient(client),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.internalPort = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** New host key (as after a reinstall): open connections are cut; returns the new fingerprint. */
  async rekey(): Promise<string> {
    const old = this.server;
    this.hostKey = generateEd25519(`root@${this.opts.host.hostname}`);
    await this.startInternal();
    this.front.dropAll();
    for (const c of this.connections) c.end();
    if (old) await new Promise<void>((resolve) => old.close(() => resolve()));
    return this.hostKey.fingerprint;
  }

  private onClient(client: Connection): void {
    // sshd writes a finished command's output, exit status and close in one go; ssh2 writes
    // them as separate packets, which Nagle would hold for the client's delayed ACK.
    if (canSetNoDelay(client)) client.setNoDelay(true);
    this.connections.add(client);
    client.on('close', () => this.connections.delete(client));
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || ctx.username !== this.opts.user) return ctx.reject(['publickey']);
      const allowed = this.clientKey.getPublicSSH();
      if (ctx.key.data.length !== allowed.length || !timingSafeEqual(ctx.key.data, allowed))
        return ctx.reject(['publickey']);
      if (ctx.signature && ctx.blob) {
        if (this.clientKey.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true)
          return ctx.reject(['publickey']);
      }
      ctx.accept();
    });
    client.on('ready', () => {
      let open = 0;
      const max = this.opts.maxSessions ?? 10;
      client.on('session', (accept, reject) => {
        if (open >= max) return reject();
        open++;
        const session = accept();
        let closed = false;
        session.on('close', () => {
          if (!closed) open--;
          closed = true;
        });
        session.on('env', (acceptEnv) => acceptEnv?.());
        session.on('pty', (_accept, rejectPty) => rejectPty?.());
        session.on('shell', (_accept, rejectShell) => rejectShell());
        session.on('exec', (acceptExec, _reject, info) => {
          const stream = acceptExec();
          const split = splitShellWords(info.command);
          if (!split.ok) {
            stream.stderr.write(`sh: 1: ${split.error}\n`);
            stream.exit(2);
            stream.end();
            return;
          }
          if (split.words.length === 0) {
            stream.exit(0);
            stream.end();
            return;
          }
          this.opts.host.exec(split.words, { via: 'ssh' }).then(
            (r) => {
              if (r.stdout) stream.write(r.stdout);
              if (r.stderr) stream.stderr.write(r.stderr);
              stream.exit(r.exitCode);
              stream.end();
            },
            (err: unknown) => {
              if (err instanceof SimConnectionDropped) return;
              stream.stderr.write(`sim internal error: ${String(err)}\n`);
              stream.exit(255);
              stream.end();
            },
          );
        });
        session.on('sftp', (acceptSftp) => {
          attachSftpHandler(acceptSftp(), this.opts.host.fs, this.opts.host.homeDir);
        });
      });
    });
  }

  async stop(): Promise<void> {
    await this.front.close();
    for (const c of this.connections) c.end();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** ssh2's server-side Connection has setNoDelay at runtime; @types/ssh2 only declares it on Client. */
function canSetNoDelay(c: unknown): c is { setNoDelay(noDelay: boolean): unknown } {
  return typeof (c as { setNoDelay?: unknown }).setNoDelay === 'function';
}
