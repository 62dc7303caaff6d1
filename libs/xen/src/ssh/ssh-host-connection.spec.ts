import { type AddressInfo, createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type DomainError, type HostEndpoint, isDomainError } from '@norm/core';
import { readHostKeyFingerprint } from './read-host-key';
import { SshHostConnection } from './ssh-host-connection';
import { sshOptions, type SshTransportOptions } from './ssh-options';
import { SshPool } from './ssh-pool';
import {
  generateKeys,
  type MiniSshServer,
  reply,
  startMiniSshServer,
  startSilentServer,
} from './mini-ssh-server.spec-helper';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(): Promise<MiniSshServer> {
  const s = await startMiniSshServer();
  cleanups.push(() => s.close());
  return s;
}

function endpoint(
  s: { port: number; hostKeyFingerprint: string },
  extra: Partial<HostEndpoint> = {},
): HostEndpoint {
  return {
    name: 'xen-a',
    address: '127.0.0.1',
    port: s.port,
    user: 'norm',
    hostKeyFingerprint: s.hostKeyFingerprint,
    sudo: false,
    ...extra,
  };
}

function connect(
  s: { port: number; hostKeyFingerprint: string; clientPrivateKey?: string },
  opts: Partial<SshTransportOptions> = {},
  extra: Partial<HostEndpoint> = {},
): SshHostConnection {
  const c = new SshHostConnection(
    endpoint(s, extra),
    sshOptions({
      privateKey: s.clientPrivateKey ?? generateKeys().clientPrivateKey,
      random: () => 0.5,
      ...opts,
    }),
  );
  cleanups.push(() => c.close());
  return c;
}

async function failure(promise: Promise<unknown>): Promise<DomainError> {
  try {
    await promise;
  } catch (err) {
    if (isDomainError(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('SshHostConnection exec', () => {
  it('runs a quoted command and returns its output', async () => {
    const s = await server();
    s.onExec = (command, ch) => reply(ch, `ran ${command}\n`, 0, 'note\n');
    const c = connect(s);
    const result = await c.exec(['xl', 'list']);
    expect(result.stdout).toBe('ran xl list\n');
    expect(result.stderr).toBe('note\n');
    expect(result.exitCode).toBe(0);
    expect(result.durationMs).toBeGreaterThan(0);
  });

  it('prefixes sudo -n when the endpoint asks for it', async () => {
    const s = await server();
    const c = connect(s, {}, { sudo: true });
    await c.exec(['xl', 'info']);
    expect(s.commands).toEqual(['sudo -n xl info']);
  });

  it('turns a non-zero exit into a typed failure carrying host, argv, exit code and stderr', async () => {
    const s = await server();
    s.onExec = (_command, ch) => reply(ch, '', 1, 'libxl: error: boom\n');
    const err = await failure(connect(s).exec(['xl', 'destroy', 'web1']));
    expect(err.details).toMatchObject({
      host: 'xen-a',
      argv: ['xl', 'destroy', 'web1'],
      exitCode: 1,
      stderr: 'libxl: error: boom\n',
    });
    expect(typeof err.details.durationMs).toBe('number');
  });

  it('multiplexes concurrent commands over one connection, never above maxChannels, in FIFO order', async () => {
    const s = await server();
    const started: string[] = [];
    s.onExec = (command, ch) => {
      started.push(command);
      setTimeout(() => reply(ch, command), 20);
    };
    const c = connect(s, { maxChannels: 3 });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => c.exec(['echo', String(i)])));
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 12 }, (_, i) => `echo ${i}`));
    expect(started).toEqual(Array.from({ length: 12 }, (_, i) => `echo ${i}`));
    expect(s.connections).toBe(1);
    expect(s.maxOpenSessions).toBe(3);
    expect(c.stats()).toMatchObject({ channelsInUse: 0, queued: 0 });
  });

  it('fails a hanging command with CommandTimeout at its deadline, closes its channel and frees the slot', async () => {
    const s = await server();
    s.onExec = (command, ch) => {
      if (command.includes('hang')) return; // never answers
      reply(ch, 'ok');
    };
    const c = connect(s, { maxChannels: 1 });
    const t0 = performance.now();
    const err = await failure(c.exec(['hang'], { timeoutMs: 200 }));
    const elapsed = performance.now() - t0;
    expect(err.code).toBe('CommandTimeout');
    expect(err.details).toMatchObject({ host: 'xen-a', argv: ['hang'], timeoutMs: 200, phase: 'exec' });
    expect(elapsed).toBeGreaterThanOrEqual(195);
    expect(elapsed).toBeLessThan(400);
    // The only slot comes back once the far side confirms the close.
    expect((await c.exec(['after'], { timeoutMs: 2_000 })).stdout).toBe('ok');
    await expectEventually(() => s.openSessions === 0);
  });

  it('times out while queued behind busy channels', async () => {
    const s = await server();
    const c = connect(s, { maxChannels: 1 });
    await c.exec(['warm']);
    s.onExec = (command, ch) => setTimeout(() => reply(ch, command), 300);
    const first = c.exec(['slow']);
    const err = await failure(c.exec(['queued'], { timeoutMs: 100 }));
    expect(err.details).toMatchObject({ phase: 'queue' });
    await first;
    expect(s.commands).toEqual(['warm', 'slow']);
  });

  it('enforces an output limit', async () => {
    const s = await server();
    s.onExec = (_command, ch) => reply(ch, 'x'.repeat(10_000));
    const err = await failure(connect(s, { maxOutputBytes: 1_000 }).exec(['big']));
    expect(err.code).toBe('RemoteCommandError');
    expect(err.details).toMatchObject({ limitBytes: 1_000 });
  });

  it('sequential commands on a warm connection do not stall on Nagle', async () => {
    const s = await server();
    s.onExec = (_command, ch) => reply(ch, 'ok');
    const c = connect(s);
    await c.exec(['warm']);
    const t0 = performance.now();
    for (let i = 0; i < 20; i += 1) await c.exec(['xl', 'list']);
    // With Nagle each round trip would wait ~40 ms for a delayed ACK (800 ms in all).
    expect(performance.now() - t0).toBeLessThan(400);
  });
});

describe('SshHostConnection failures and recovery', () => {
  it('retries a refused channel open (sshd at MaxSessions) and reports the refusal only when it persists', async () => {
    const s = await server();
    s.onExec = (_command, channel) => reply(channel, 'ok\n');
    const c = connect(s);
    await c.exec(['xl', 'list']);
    s.refuseSessions = 2;
    expect((await c.exec(['xl', 'list'])).stdout).toBe('ok\n');
    s.refuseSessions = 100;
    const err = await failure(c.exec(['xl', 'list']));
    expect(err.code).toBe('HostUnreachable');
    expect(err.details).toMatchObject({ reason: 'channel open refused' });
    expect(s.commands).toHaveLength(2);
  });

  it('retries once, on a new connection, a command whose connection was already gone', async () => {
    const s = await server();
    s.onExec = (_command, channel) => reply(channel, 'ok\n');
    const c = connect(s);
    await c.exec(['xl', 'list']);
    s.dropAll();
    expect((await c.exec(['xl', 'list'])).stdout).toBe('ok\n');
    expect(s.connections).toBe(2);
    expect(s.commands).toHaveLength(2);
  });

  it('fails an in-flight command with HostUnreachable when the connection drops, then reconnects', async () => {
    const s = await server();
    s.onExec = (command, ch) => {
      if (command.includes('hang')) return;
      reply(ch, 'ok');
    };
    const c = connect(s);
    await c.exec(['warm']);
    const inFlight = failure(c.exec(['hang'], { timeoutMs: 5_000 }));
    await expectEventually(() => s.commands.length === 2);
    s.dropAll();
    const err = await inFlight;
    expect(err.code).toBe('HostUnreachable');
    expect(err.details).toMatchObject({ reason: 'connection lost' });
    expect((await c.exec(['again'])).stdout).toBe('ok');
    expect(s.connections).toBe(2);
  });

  it('reports a host that is down as HostUnreachable, backs off, and recovers when it returns', async () => {
    const port = await freePort();
    const keys = generateKeys();
    const probe = await startMiniSshServer({ keys });
    const fingerprint = probe.hostKeyFingerprint;
    await probe.close();
    const c = connect(
      { port, hostKeyFingerprint: fingerprint, clientPrivateKey: keys.clientPrivateKey },
      { backoff: { baseMs: 200, maxMs: 200 } },
    );
    const first = await failure(c.exec(['xl', 'list']));
    expect(first.code).toBe('HostUnreachable');
    expect(first.details).toMatchObject({ host: 'xen-a', reason: 'ECONNREFUSED' });
    // Within the backoff window the failure is immediate and says when the next try is.
    const t0 = performance.now();
    const second = await failure(c.exec(['xl', 'list']));
    expect(performance.now() - t0).toBeLessThan(50);
    expect(second.details).toMatchObject({ backingOff: true });
    const back = await startMiniSshServer({ keys, port });
    cleanups.push(() => back.close());
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect((await c.exec(['xl', 'list'])).exitCode).toBe(0);
    expect(c.stats().consecutiveFailures).toBe(0);
  });

  it('never hangs on a host that accepts TCP but says nothing', async () => {
    const silent = await startSilentServer();
    cleanups.push(() => silent.close());
    const fp = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    // The command deadline comes first: CommandTimeout in the connect phase.
    const c1 = connect({ port: silent.port, hostKeyFingerprint: fp }, { connectTimeoutMs: 5_000 });
    const t0 = performance.now();
    const e1 = await failure(c1.exec(['xl', 'list'], { timeoutMs: 200 }));
    expect(performance.now() - t0).toBeLessThan(400);
    expect(e1.code).toBe('CommandTimeout');
    expect(e1.details).toMatchObject({ phase: 'connect' });
    // The connect timeout comes first: HostUnreachable.
    const c2 = connect({ port: silent.port, hostKeyFingerprint: fp }, { connectTimeoutMs: 200 });
    const t1 = performance.now();
    const e2 = await failure(c2.exec(['xl', 'list'], { timeoutMs: 5_000 }));
    expect(performance.now() - t1).toBeLessThan(600);
    expect(e2.code).toBe('HostUnreachable');
  });

  it('refuses a host whose key does not match the pin before authenticating or running anything', async () => {
    const s = await server();
    const other = generateKeys();
    const otherServer = await startMiniSshServer({ keys: other });
    await otherServer.close();
    const c = connect(s, {}, { hostKeyFingerprint: otherServer.hostKeyFingerprint });
    const err = await failure(c.exec(['xl', 'destroy', 'web1']));
    expect(err.code).toBe('HostKeyMismatch');
    expect(err.details).toEqual({
      host: 'xen-a',
      expected: otherServer.hostKeyFingerprint,
      actual: s.hostKeyFingerprint,
    });
    expect(s.authAttempts).toBe(0);
    expect(s.commands).toEqual([]);
    // Later calls keep saying HostKeyMismatch, not a vague "unreachable".
    expect((await failure(c.exec(['xl', 'list']))).code).toBe('HostKeyMismatch');
  });

  it('close() fails running and queued commands and refuses new ones', async () => {
    const s = await server();
    s.onExec = () => undefined;
    const c = connect(s, { maxChannels: 1 });
    const running = failure(c.exec(['hang1']));
    const queued = failure(c.exec(['hang2']));
    await expectEventually(() => s.commands.length === 1);
    await c.close();
    expect((await running).code).toBe('HostUnreachable');
    expect((await queued).code).toBe('HostUnreachable');
    expect((await failure(c.exec(['x']))).details).toMatchObject({ reason: 'transport closed' });
  });
});

describe('SshHostConnection SFTP', () => {
  it('uploads atomically with mode 0600, replaces an existing file, and leaves no temp file', async () => {
    const s = await server();
    const c = connect(s);
    await c.upload('/var/lib/norm/domains/web1.cfg', 'name = "web1"\n');
    expect(s.files.get('/var/lib/norm/domains/web1.cfg')).toEqual({
      data: Buffer.from('name = "web1"\n'),
      mode: 0o600,
    });
    await c.upload('/var/lib/norm/domains/web1.cfg', 'name = "web1"\nmemory = 512\n');
    expect(s.files.get('/var/lib/norm/domains/web1.cfg')?.data.toString()).toContain('memory = 512');
    expect([...s.files.keys()]).toEqual(['/var/lib/norm/domains/web1.cfg']);
    // One SFTP session serves both uploads.
    expect(s.maxOpenSessions).toBe(1);
  });

  it('remove() reports whether a file was there', async () => {
    const s = await server();
    const c = connect(s);
    await c.upload('/d/a.cfg', 'x');
    expect(await c.remove('/d/a.cfg')).toBe(true);
    expect(await c.remove('/d/a.cfg')).toBe(false);
  });

  it('rejects paths that are not plain absolute paths', async () => {
    const s = await server();
    const c = connect(s);
    expect((await failure(c.upload('relative.cfg', 'x'))).code).toBe('UnsafeArgument');
    expect((await failure(c.remove('/var/lib/norm/../../etc/passwd'))).code).toBe('UnsafeArgument');
  });
});

describe('readHostKeyFingerprint', () => {
  it('returns the key fingerprint without authenticating', async () => {
    const s = await server();
    expect(await readHostKeyFingerprint('127.0.0.1', s.port, 2_000)).toBe(s.hostKeyFingerprint);
    expect(s.authAttempts).toBe(0);
  });

  it('fails with HostUnreachable when nothing answers', async () => {
    const silent = await startSilentServer();
    cleanups.push(() => silent.close());
    const err = await failure(readHostKeyFingerprint('127.0.0.1', silent.port, 200));
    expect(err.code).toBe('HostUnreachable');
  });
});

describe('SshPool', () => {
  it('shares one connection per endpoint and closes them all', async () => {
    const s = await server();
    const pool = new SshPool(sshOptions({ privateKey: s.clientPrivateKey }));
    const a = pool.forHost(endpoint(s));
    expect(pool.forHost(endpoint(s))).toBe(a);
    await Promise.all([a.exec(['x']), pool.forHost(endpoint(s)).exec(['y'])]);
    expect(s.connections).toBe(1);
    // A re-pinned key is a different connection.
    expect(pool.forHost(endpoint(s, { hostKeyFingerprint: 'SHA256:other' }))).not.toBe(a);
    await pool.close();
    expect((await failure(a.exec(['z']))).code).toBe('HostUnreachable');
    expect(() => pool.forHost(endpoint(s))).toThrow();
  });
});

async function expectEventually(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
