import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type ClientChannel, type SFTPWrapper } from 'ssh2';
import { generateEd25519, sshFingerprint } from './host-key.sim';
import { InProcessSshServer } from './ssh-sim.server';
import { SimulatedXenHost } from './xen-host.sim';

const clientKey = generateEd25519('test');
let host: SimulatedXenHost;
let server: InProcessSshServer;

function connectClient(
  opts: { key?: string; user?: string; readyTimeout?: number } = {},
): Promise<{ client: Client; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let fingerprint = '';
    client.once('ready', () => resolve({ client, fingerprint }));
    client.on('error', reject);
    client.connect({
      host: '127.0.0.1',
      port: server.port,
      username: opts.user ?? 'norm',
      privateKey: opts.key ?? clientKey.privateKey,
      hostVerifier: (key: Buffer) => {
        fingerprint = sshFingerprint(key);
        return true;
      },
      readyTimeout: opts.readyTimeout ?? 3000,
    });
  });
}

function run(
  client: Client,
  command: string,
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream: ClientChannel) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      stream.on('data', (d: Buffer) => (stdout += d.toString()));
      stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      stream.on('exit', (c: number | null) => (code = c));
      stream.on('close', () => resolve({ stdout, stderr, code }));
    });
  });
}

function sftpOf(client: Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))));
}

beforeAll(async () => {
  host = new SimulatedXenHost({ hostname: 'xen1' });
  server = new InProcessSshServer({ host, user: 'norm', clientPublicKey: clientKey.publicKey });
  await server.start();
});
afterAll(() => server.stop());

describe('in-process ssh2 server', () => {
  it('authenticates the configured key only and reports its own host key fingerprint', async () => {
    const { client, fingerprint } = await connectClient();
    expect(fingerprint).toBe(server.hostKey.fingerprint);
    expect(fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    client.end();
    await expect(connectClient({ key: generateEd25519().privateKey })).rejects.toThrow(/authentication/i);
    await expect(connectClient({ user: 'root' })).rejects.toThrow(/authentication/i);
  });

  it('runs exec commands split like sh and delivers hostile arguments intact', async () => {
    const { client } = await connectClient();
    const r = await run(client, 'sudo -n xl list');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Domain-0');
    const hostile = ['a b', "it's", '$(id)', '`x`', '"q"', 'back\\slash', ';|&', '*', '', 'ünï'];
    const quoted = hostile.map((s) => `'${s.replace(/'/g, `'\\''`)}'`).join(' ');
    const echo = await run(client, `norm-argv ${quoted}`);
    expect(JSON.parse(echo.stdout)).toEqual(hostile);
    const refused = await run(client, 'xl list; id');
    expect(refused.code).toBe(2);
    expect(host.log.at(-1)?.command).toEqual(['norm-argv', ...hostile]);
    client.end();
  });

  it('uploads a config over SFTP that xl create then reads', async () => {
    const { client } = await connectClient();
    const sftp = await sftpOf(client);
    const cfg = 'name = "up1"\nmemory = 64\nvcpus = 1\n';
    await new Promise<void>((resolve, reject) =>
      sftp.writeFile('/var/lib/norm/domains/up1.cfg.tmp', cfg, { mode: 0o640 }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    await new Promise<void>((resolve, reject) =>
      sftp.rename('/var/lib/norm/domains/up1.cfg.tmp', '/var/lib/norm/domains/up1.cfg', (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    const names = await new Promise<string[]>((resolve, reject) =>
      sftp.readdir('/var/lib/norm/domains', (err, list) =>
        err ? reject(err) : resolve(list.map((e) => e.filename)),
      ),
    );
    expect(names).toContain('up1.cfg');
    const r = await run(client, 'sudo -n xl create /var/lib/norm/domains/up1.cfg');
    expect(r).toEqual({ stdout: '', stderr: 'Parsing config from /var/lib/norm/domains/up1.cfg\n', code: 0 });
    expect(host.state.findByName('up1')?.memoryMb).toBe(64);
    client.end();
  });

  it('refuses the 11th concurrent session like sshd MaxSessions=10', async () => {
    const { client } = await connectClient();
    const hangs = Array.from({ length: 10 }, () => host.faults.hangNext());
    const running = hangs.map(() => run(client, 'xl list'));
    await Promise.all(hangs.map((h) => h.caught));
    await expect(run(client, 'xl list')).rejects.toThrow();
    host.faults.releaseAll();
    expect((await Promise.all(running)).every((r) => r.code === 0)).toBe(true);
    client.end();
  });

  it('drops connections, refuses TCP while down and changes its host key', async () => {
    const { client } = await connectClient();
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    host.faults.dropConnections();
    await closed;
    await host.faults.hostDown();
    await expect(connectClient()).rejects.toThrow(/ECONNREFUSED/);
    await host.faults.hostUp();
    const before = server.hostKey.fingerprint;
    const after = await host.faults.changeHostKey();
    expect(after).not.toBe(before);
    const { client: c2, fingerprint } = await connectClient();
    expect(fingerprint).toBe(after);
    c2.end();
  });

  it('hangs with TCP up: handshakes stall until the host resumes', async () => {
    host.faults.hostHang();
    await expect(connectClient({ readyTimeout: 300 })).rejects.toThrow(/timed out/i);
    host.faults.hostResume();
    const { client } = await connectClient();
    expect((await run(client, 'xl info host')).stdout).toBe('xen1\n');
    client.end();
  });
});
