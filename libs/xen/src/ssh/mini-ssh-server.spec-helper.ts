import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { type AddressInfo } from 'node:net';
import { type Connection, type ParsedKey, Server, type ServerChannel, type SFTPWrapper, utils } from 'ssh2';
import { hostKeyFingerprint } from './host-key-fingerprint';

/**
 * A deliberately small ssh2 server for the transport's unit tests: exec with a
 * test-supplied handler and a minimal in-memory SFTP. The full simulated Xen host lives in
 * @norm/xen/testing; this one exists so the transport's edge cases (hangs, drops, channel
 * counts) can be provoked precisely.
 */
export type ExecHandler = (command: string, channel: ServerChannel) => void;

export interface MiniSshServer {
  port: number;
  hostKeyFingerprint: string;
  clientPrivateKey: string;
  /** Every command received, in order. */
  commands: string[];
  /** Every authentication attempt that reached the server (proves a refused host saw none). */
  authAttempts: number;
  connections: number;
  openSessions: number;
  maxOpenSessions: number;
  files: Map<string, { data: Buffer; mode: number }>;
  supportsPosixRename: boolean;
  /** The next N session channel opens are refused (as sshd does at MaxSessions). */
  refuseSessions: number;
  onExec: ExecHandler;
  dropAll(): void;
  close(): Promise<void>;
}

export function generateKeys(): { hostKey: string; clientPrivateKey: string; clientPublicKey: ParsedKey } {
  const host = usableKeyPair();
  const client = usableKeyPair();
  return { hostKey: host.private, clientPrivateKey: client.private, clientPublicKey: client.parsedPublic };
}

/**
 * ssh2 1.17's generateKeyPairSync occasionally emits an ed25519 public key its own parser
 * rejects ("Malformed OpenSSH public key"); retry instead of failing a random test.
 */
export function usableKeyPair(): { private: string; public: string; parsedPublic: ParsedKey } {
  for (let attempt = 0; ; attempt += 1) {
    const pair = utils.generateKeyPairSync('ed25519');
    const parsedPublic = utils.parseKey(pair.public);
    const parsedPrivate = utils.parseKey(pair.private);
    if (!(parsedPublic instanceof Error) && !(parsedPrivate instanceof Error))
      return { ...pair, parsedPublic };
    if (attempt >= 20) throw parsedPublic instanceof Error ? parsedPublic : new Error('unusable key pair');
  }
}

/** Runs a handler that answers like a shell would: output, then an exit status. */
export function reply(channel: ServerChannel, stdout: string, code = 0, stderr = ''): void {
  if (stdout) channel.write(stdout);
  if (stderr) channel.stderr.write(stderr);
  channel.exit(code);
  channel.end();
}

export async function startMiniSshServer(
  options: { keys?: ReturnType<typeof generateKeys>; port?: number } = {},
): Promise<MiniSshServer> {
  const keys = options.keys ?? generateKeys();
  const hostParsed = utils.parseKey(keys.hostKey);
  if (hostParsed instanceof Error) throw hostParsed;
  const sockets = new Set<Socket>();
  const clients = new Set<Connection>();

  const state: MiniSshServer = {
    port: 0,
    hostKeyFingerprint: hostKeyFingerprint(hostParsed.getPublicSSH()),
    clientPrivateKey: keys.clientPrivateKey,
    commands: [],
    authAttempts: 0,
    connections: 0,
    openSessions: 0,
    maxOpenSessions: 0,
    files: new Map(),
    supportsPosixRename: true,
    refuseSessions: 0,
    onExec: (_command, channel) => reply(channel, ''),
    dropAll: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      state.dropAll();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };

  const ssh = new Server({ hostKeys: [keys.hostKey] }, (client) => {
    clients.add(client);
    state.connections += 1;
    const uncounters = new Set<() => void>();
    client.on('error', () => undefined);
    client.on('close', () => {
      clients.delete(client);
      for (const uncount of uncounters) uncount();
    });
    client.on('authentication', (ctx) => {
      state.authAttempts += 1;
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const expected = keys.clientPublicKey.getPublicSSH();
      if (ctx.key.algo !== keys.clientPublicKey.type || !safeEqual(ctx.key.data, expected))
        return ctx.reject();
      if (ctx.signature && ctx.blob && !keys.clientPublicKey.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) {
        return ctx.reject();
      }
      ctx.accept();
    });
    client.on('session', (acceptSession, rejectSession) => {
      if (state.refuseSessions > 0) {
        state.refuseSessions -= 1;
        rejectSession();
        return;
      }
      const session = acceptSession();
      state.openSessions += 1;
      state.maxOpenSessions = Math.max(state.maxOpenSessions, state.openSessions);
      let counted = true;
      const uncount = (): void => {
        if (!counted) return;
        counted = false;
        state.openSessions -= 1;
        uncounters.delete(uncount);
      };
      uncounters.add(uncount);
      session.on('close', uncount);
      session.on('exec', (accept, _reject, info) => {
        state.commands.push(info.command);
        const channel = accept();
        channel.on('close', uncount);
        state.onExec(info.command, channel);
      });
      session.on('sftp', (accept) => {
        const sftp = accept();
        sftp.on('close', uncount);
        serveSftp(sftp, state);
      });
    });
  });

  const tcp: NetServer = createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    ssh.injectSocket(socket);
  });
  await new Promise<void>((resolve) => tcp.listen(options.port ?? 0, '127.0.0.1', resolve));
  state.port = (tcp.address() as AddressInfo).port;
  return state;
}

/** A TCP listener that accepts and then says nothing: a host that hangs with TCP up. */
export async function startSilentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const tcp = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  return {
    port: (tcp.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        tcp.close(() => resolve());
      }),
  };
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const OPEN_FLAGS = utils.sftp.OPEN_MODE;
const STATUS = utils.sftp.STATUS_CODE;

function serveSftp(sftp: SFTPWrapper, state: MiniSshServer): void {
  const handles = new Map<number, string>();
  let nextHandle = 1;
  const handleOf = (buf: Buffer): string | undefined => handles.get(buf.readUInt32BE(0));
  sftp.on('OPEN', (reqid, filename, flags, attrs) => {
    const exists = state.files.has(filename);
    if (flags & OPEN_FLAGS.EXCL && exists) return sftp.status(reqid, STATUS.FAILURE);
    if (!exists) {
      if (!(flags & OPEN_FLAGS.CREAT)) return sftp.status(reqid, STATUS.NO_SUCH_FILE);
      state.files.set(filename, { data: Buffer.alloc(0), mode: (attrs.mode ?? 0o644) & 0o777 & ~0o022 });
    } else if (flags & OPEN_FLAGS.TRUNC) {
      state.files.get(filename)!.data = Buffer.alloc(0);
    }
    const id = nextHandle++;
    handles.set(id, filename);
    const handle = Buffer.alloc(4);
    handle.writeUInt32BE(id);
    sftp.handle(reqid, handle);
  });
  sftp.on('WRITE', (reqid, handle, offset, data) => {
    const file = state.files.get(handleOf(handle) ?? '');
    if (!file) return sftp.status(reqid, STATUS.FAILURE);
    const next = Buffer.alloc(Math.max(file.data.length, offset + data.length));
    file.data.copy(next);
    data.copy(next, offset);
    file.data = next;
    sftp.status(reqid, STATUS.OK);
  });
  sftp.on('FSETSTAT', (reqid, handle, attrs) => {
    const file = state.files.get(handleOf(handle) ?? '');
    if (!file) return sftp.status(reqid, STATUS.FAILURE);
    if (attrs.mode !== undefined) file.mode = attrs.mode & 0o777;
    sftp.status(reqid, STATUS.OK);
  });
  sftp.on('CLOSE', (reqid, handle) => {
    handles.delete(handle.readUInt32BE(0));
    sftp.status(reqid, STATUS.OK);
  });
  sftp.on('REMOVE', (reqid, path) => {
    if (!state.files.delete(path)) return sftp.status(reqid, STATUS.NO_SUCH_FILE);
    sftp.status(reqid, STATUS.OK);
  });
  sftp.on('RENAME', (reqid, from, to) => {
    const file = state.files.get(from);
    if (!file) return sftp.status(reqid, STATUS.NO_SUCH_FILE);
    if (state.files.has(to)) return sftp.status(reqid, STATUS.FAILURE);
    state.files.delete(from);
    state.files.set(to, file);
    sftp.status(reqid, STATUS.OK);
  });
  sftp.on('EXTENDED', (reqid, request, data) => {
    if (request !== 'posix-rename@openssh.com' || !state.supportsPosixRename) {
      return sftp.status(reqid, STATUS.OP_UNSUPPORTED);
    }
    const fromLen = data.readUInt32BE(0);
    const from = data.subarray(4, 4 + fromLen).toString();
    const to = data.subarray(8 + fromLen, 8 + fromLen + data.readUInt32BE(4 + fromLen)).toString();
    const file = state.files.get(from);
    if (!file) return sftp.status(reqid, STATUS.NO_SUCH_FILE);
    state.files.delete(from);
    state.files.set(to, file);
    sftp.status(reqid, STATUS.OK);
  });
}
