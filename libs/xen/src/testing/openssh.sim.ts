import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { generateEd25519, type SimKeyPair } from './host-key.sim';
import { type SimFileInstaller } from './install.sim';
import { TcpFront } from './tcp-front.sim';
import { SimConnectionDropped, type SimulatedXenHost } from './xen-host.sim';
import { type SimFileReader } from './xen-sim.state';

/**
 * A real OpenSSH sshd (Debian's /usr/sbin/sshd) in front of one SimulatedXenHost, so Norm's
 * SSH client meets a genuine server: real key exchange, real `sh -c` quoting, real
 * internal-sftp. `xl`, `vgs`, `lvs`, `lvcreate`, `lvremove`, `sudo` and `norm-argv` on the
 * session's PATH are tiny scripts that forward argv and cwd over a unix socket to the
 * simulator object in the test process, so state, log and faults are shared with the
 * in-process mode.
 *
 * Login user: the current user (root here), because sshd without PAM can only switch to a
 * real account; its key is the fleet's client key in a temp AuthorizedKeysFile. Config files
 * for `xl create` are uploaded through real SFTP into `configDir` (a temp dir) and the
 * simulator reads them from the real filesystem.
 */
export const SSHD_PATH = '/usr/sbin/sshd';

const FORWARDED = ['xl', 'vgs', 'lvs', 'lvcreate', 'lvremove', 'sudo', 'norm-argv'];

// Runs under the sshd session; plain CommonJS so it needs nothing but node.
const FORWARD_JS = `'use strict';
const net = require('net');
const argv = process.argv.slice(2);
const sock = net.connect(process.env.NORM_SIM_SOCKET || '');
const chunks = [];
sock.on('connect', () => sock.write(JSON.stringify({ argv, cwd: process.cwd() }) + '\\n'));
sock.on('data', (d) => chunks.push(d));
sock.on('error', (e) => { process.stderr.write('norm-sim: simulator unreachable: ' + e.message + '\\n'); process.exit(255); });
sock.on('end', () => {
  let r;
  try { r = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { process.exit(255); }
  process.stdout.write(r.stdout, () => process.stderr.write(r.stderr, () => process.exit(r.exitCode)));
});
`;

type Errno = 'ENOENT' | 'EISDIR' | 'ENOTDIR' | 'EACCES';
const errnoOf = (err: unknown): Errno => {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EISDIR' || code === 'ENOTDIR' || code === 'EACCES' ? code : 'ENOENT';
};

/**
 * Reads `xl create` configs from the real filesystem, relative to the session's cwd, and
 * places them for a sudo'd `install` (the forwarder runs as this machine's user, root in CI).
 */
export const realFileReader: SimFileReader & SimFileInstaller = {
  // Reached only through the forwarded sudo, so the result is root's (uid is always 0 here).
  installFile(source, destination, mode) {
    try {
      if (!statSync(source).isFile()) return { ok: false, side: 'source', error: 'EISDIR' };
    } catch (err) {
      return { ok: false, side: 'source', error: errnoOf(err) };
    }
    try {
      // Unlink first as install does: the new file is created fresh, never written through.
      try {
        unlinkSync(destination);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      copyFileSync(source, destination);
      chmodSync(destination, mode);
      if (process.getuid?.() === 0) chownSync(destination, 0, 0);
      return { ok: true };
    } catch (err) {
      return { ok: false, side: 'destination', error: errnoOf(err) };
    }
  },
  readText(path, cwd) {
    try {
      return { ok: true, text: readFileSync(resolvePath(cwd, path), 'utf8') };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const error =
        code === 'EISDIR'
          ? 'Is a directory'
          : code === 'EACCES'
            ? 'Permission denied'
            : 'No such file or directory';
      return { ok: false, error };
    }
  },
};

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function waitForPort(
  port: number,
  timeoutMs: number,
  child: ChildProcess,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${log()}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}: ${log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface OpenSshHostOptions {
  host: SimulatedXenHost;
  clientPublicKey: string;
  /** Public port (0 = any). */
  port?: number;
  sshdPath?: string;
}

export class OpenSshHost {
  hostKey: SimKeyPair = generateEd25519('root@norm-sim');
  readonly user = userInfo().username;
  dir = '';
  /** Real directory that plays `/var/lib/norm/domains`: upload configs here. */
  configDir = '';
  private sshd?: ChildProcess;
  private sshdLog = '';
  private internalPort = 0;
  private socketServer?: Server;
  private readonly sockets = new Set<Socket>();
  private readonly front: TcpFront;

  constructor(private readonly opts: OpenSshHostOptions) {
    this.front = new TcpFront(() => this.internalPort);
  }

  get port(): number {
    return this.front.listenPort;
  }

  static available(sshdPath = SSHD_PATH): boolean {
    return existsSync(sshdPath);
  }

  async start(): Promise<number> {
    this.dir = await mkdtemp(join(tmpdir(), 'norm-sshd-'));
    this.configDir = join(this.dir, 'domains');
    const bin = join(this.dir, 'bin');
    mkdirSync(this.configDir, { mode: 0o750 });
    mkdirSync(bin);
    // sshd refuses to start without its privilege separation directory.
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    await writeFile(join(this.dir, 'forward.js'), FORWARD_JS);
    for (const name of FORWARDED) {
      const script = `#!/bin/sh\nexec '${process.execPath}' '${join(this.dir, 'forward.js')}' ${name} "$@"\n`;
      await writeFile(join(bin, name), script, { mode: 0o755 });
    }
    await writeFile(join(this.dir, 'authorized_keys'), `${this.opts.clientPublicKey.trim()}\n`, {
      mode: 0o600,
    });
    await this.startSocket();
    this.internalPort = await freePort();
    await this.writeHostKey();
    await this.startSshd();
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

  private async writeHostKey(): Promise<void> {
    const keyPath = join(this.dir, 'ssh_host_ed25519_key');
    // sshd ignores a host key readable by others ("UNPROTECTED PRIVATE KEY FILE").
    await writeFile(keyPath, this.hostKey.privateKey, { mode: 0o600 });
    await chmod(keyPath, 0o600);
    await writeFile(`${keyPath}.pub`, `${this.hostKey.publicKey}\n`);
  }

  private sshdConfig(): string {
    const d = this.dir;
    return [
      `Port ${this.internalPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(d, 'ssh_host_ed25519_key')}`,
      `PidFile ${join(d, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(d, 'authorized_keys')}`,
      'UsePAM no',
      'StrictModes no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      `AllowUsers ${this.user}`,
      'MaxSessions 10',
      'MaxStartups 100:30:200',
      'UseDNS no',
      'PrintMotd no',
      'LogLevel ERROR',
      'Subsystem sftp internal-sftp',
      // SHLVL=1: bash sources ~/.bashrc for every command sshd runs at shell level 1, and the
      // login user here is this machine's (root, whose rc files can take ~0.5 s); a Xen
      // host's `norm` user has a plain shell, so level 2 skips them, as there.
      `SetEnv NORM_SIM_SOCKET=${join(d, 'sim.sock')} PATH=${join(d, 'bin')}:/usr/local/bin:/usr/bin:/bin SHLVL=1`,
      '',
    ].join('\n');
  }

  private async startSshd(): Promise<void> {
    const cfg = join(this.dir, 'sshd_config');
    await writeFile(cfg, this.sshdConfig());
    this.sshdLog = '';
    const child = spawn(this.opts.sshdPath ?? SSHD_PATH, ['-D', '-e', '-f', cfg], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.sshdLog = (this.sshdLog + d.toString()).slice(-4000);
    });
    this.sshd = child;
    await waitForPort(this.internalPort, 10_000, child, () => this.sshdLog);
  }

  private async stopSshd(): Promise<void> {
    const child = this.sshd;
    this.sshd = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  private async startSocket(): Promise<void> {
    const path = join(this.dir, 'sim.sock');
    const server = createServer((sock) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
      sock.on('error', () => {});
      let buf = '';
      sock.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        const req = JSON.parse(buf.slice(0, nl)) as { argv: string[]; cwd: string };
        this.opts.host.exec(req.argv, { via: 'openssh', cwd: req.cwd, files: realFileReader }).then(
          (r) => sock.end(JSON.stringify(r)),
          (err: unknown) => {
            if (err instanceof SimConnectionDropped) {
              sock.destroy();
              return;
            }
            sock.end(
              JSON.stringify({ stdout: '', stderr: `sim internal error: ${String(err)}\n`, exitCode: 255 }),
            );
          },
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(path, () => resolve()));
    this.socketServer = server;
  }

  /** New host key: sshd restarts with it (as after a reinstall); returns the new fingerprint. */
  async rekey(): Promise<string> {
    this.hostKey = generateEd25519('root@norm-sim');
    this.front.dropAll();
    await this.stopSshd();
    await this.writeHostKey();
    await this.startSshd();
    return this.hostKey.fingerprint;
  }

  async stop(): Promise<void> {
    await this.front.close();
    await this.stopSshd();
    for (const s of this.sockets) s.destroy();
    const server = this.socketServer;
    this.socketServer = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
