import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, type ClientChannel, type SFTPWrapper } from 'ssh2';
import {
  OpenSshHost,
  sshFingerprint,
  startSimulatedFleet,
  type SimulatedFleet,
  type SimulatedFleetHost,
} from '@norm/xen/testing';

/**
 * Drives the real-sshd mode with a plain ssh2 client: real key exchange, real `sh -c`,
 * real internal-sftp, with the simulator behind the forwarded commands.
 */
function connect(h: SimulatedFleetHost): Promise<{ client: Client; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let fingerprint = '';
    client.once('ready', () => resolve({ client, fingerprint }));
    client.on('error', reject);
    client.connect({
      host: h.address,
      port: h.port,
      username: h.user,
      privateKey: h.privateKey,
      hostVerifier: (key: Buffer) => {
        fingerprint = sshFingerprint(key);
        return true;
      },
      readyTimeout: 10_000,
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

const hasSshd = OpenSshHost.available();
let fleet: SimulatedFleet;

describe.runIf(hasSshd)('simulated fleet behind real OpenSSH sshd', () => {
  beforeAll(async () => {
    fleet = await startSimulatedFleet({ count: 2, mode: 'openssh' });
  });
  afterAll(() => fleet.stop());

  it('gives each host its own port, key and state', async () => {
    const [a, b] = fleet.hosts;
    if (!a || !b) throw new Error('two hosts expected');
    expect(a.port).not.toBe(b.port);
    expect(a.fingerprint).not.toBe(b.fingerprint);
    const { client, fingerprint } = await connect(a);
    expect(fingerprint).toBe(a.fingerprint);
    const r = await run(client, 'sudo -n xl info host');
    expect(r).toEqual({ stdout: 'xen1\n', stderr: '', code: 0 });
    client.end();
    expect(a.sim.commands(['xl']).at(-1)).toMatchObject({ sudo: true, via: 'openssh' });
    expect(b.sim.log).toHaveLength(0);
  });

  it('delivers hostile arguments through sh -c intact', async () => {
    const h = fleet.hosts[0];
    if (!h) throw new Error('host expected');
    const { client } = await connect(h);
    const hostile = [
      'a b',
      "it's",
      '$(id)',
      '`id`',
      '"q"',
      'back\\slash',
      ';|&',
      '*',
      '',
      '\ttab',
      'ünï',
      '-n',
    ];
    const quoted = hostile.map((s) => `'${s.replace(/'/g, `'\\''`)}'`).join(' ');
    const r = await run(client, `norm-argv ${quoted}`);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(hostile);
    client.end();
  });

  it('uploads a config through real SFTP and xl create reads it', async () => {
    const h = fleet.hosts[1];
    if (!h) throw new Error('host expected');
    const { client } = await connect(h);
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
      client.sftp((err, s) => (err ? reject(err) : resolve(s))),
    );
    const path = `${h.configDir}/web1.cfg`;
    await new Promise<void>((resolve, reject) =>
      sftp.writeFile(path, 'name = "web1"\nmemory = 128\nvcpus = 1\n', { mode: 0o640 }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    expect(await run(client, `sudo -n xl create ${path}`)).toEqual({
      stdout: '',
      stderr: `Parsing config from ${path}\n`,
      code: 0,
    });
    expect((await run(client, 'sudo -n xl list web1')).stdout).toContain('web1');
    const missing = await run(client, `sudo -n xl create ${h.configDir}/nope.cfg`);
    expect(missing).toEqual({
      stdout: '',
      stderr: `Failed to read config file: ${h.configDir}/nope.cfg: No such file or directory\n`,
      code: 3,
    });
    client.end();
  });

  it('shares faults with the in-process simulator: injected failures and host key change', async () => {
    const h = fleet.hosts[0];
    if (!h) throw new Error('host expected');
    h.sim.faults.failNext(1, { exitCode: 5, stderr: '  Volume group "vg0" not found\n' });
    const { client } = await connect(h);
    expect(await run(client, 'sudo -n vgs')).toEqual({
      stdout: '',
      stderr: '  Volume group "vg0" not found\n',
      code: 5,
    });
    client.end();
    const before = h.fingerprint;
    const after = await h.sim.faults.changeHostKey();
    expect(after).not.toBe(before);
    const again = await connect(h);
    expect(again.fingerprint).toBe(after);
    again.client.end();
  });
});
