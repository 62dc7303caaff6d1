import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './app-process';
import { expectEventually } from './expect-eventually';

const run = promisify(execFile);

/** Debian's bind9 and bind9-dnsutils, installed by scripts/bootstrap when missing. */
const NAMED = '/usr/sbin/named';

export interface NamedZone {
  /** Zone apex without the trailing dot, e.g. `lab.example` or `0.77.10.in-addr.arpa`. */
  name: string;
  /** False: the zone takes no updates at all (the server answers REFUSED). */
  updatable: boolean;
}

export interface NamedServer {
  host: string;
  port: number;
  keyName: string;
  /** Base64 HMAC-SHA256 secret the zones accept updates signed with. */
  secret: string;
  /** Runs `nsupdate` with the key: one command per line, `send` appended. */
  nsupdate(commands: string[]): Promise<void>;
  /** `dig +short` against this server, one answer per element. */
  dig(name: string, type: string): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * A real `named` on a loopback port in a temp directory: primary zones that accept RFC 2136
 * updates signed with one TSIG key (`update-policy`), so tests talk to the real thing.
 */
export async function startNamed(zones: readonly NamedZone[]): Promise<NamedServer> {
  const dir = mkdtempSync(join(tmpdir(), 'norm-named-'));
  const port = await freePort();
  const keyName = 'norm-test-key';
  const secret = randomBytes(32).toString('base64');
  const zoneBlocks = zones.map((z) => {
    writeFileSync(
      join(dir, `${z.name}.db`),
      [
        '$TTL 300',
        `@ IN SOA localhost. hostmaster.localhost. 1 3600 600 86400 300`,
        // An out-of-zone NS needs no glue, so forward and reverse zones are written alike.
        '@ IN NS localhost.',
        '',
      ].join('\n'),
    );
    return [
      `zone "${z.name}" {`,
      '  type primary;',
      `  file "${z.name}.db";`,
      z.updatable ? `  update-policy { grant ${keyName} zonesub ANY; };` : '  allow-update { none; };',
      '};',
    ].join('\n');
  });
  writeFileSync(
    join(dir, 'named.conf'),
    [
      `key "${keyName}" { algorithm hmac-sha256; secret "${secret}"; };`,
      'options {',
      `  directory "${dir}";`,
      `  pid-file "${join(dir, 'named.pid')}";`,
      `  session-keyfile "${join(dir, 'session.key')}";`,
      `  managed-keys-directory "${dir}";`,
      `  listen-on port ${port} { 127.0.0.1; };`,
      '  listen-on-v6 { none; };',
      '  recursion no;',
      '  dnssec-validation no;',
      '  notify no;',
      '};',
      // No rndc channel: nothing here needs one and it would take a fixed port.
      'controls { };',
      ...zoneBlocks,
      '',
    ].join('\n'),
  );
  // -g: foreground, logs to stderr; -n 1: one worker thread on this shared 2-core machine.
  const child: ChildProcess = spawn(NAMED, ['-g', '-n', '1', '-c', join(dir, 'named.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-8000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const dig = async (name: string, type: string): Promise<string[]> => {
    const { stdout } = await run('dig', [
      '@127.0.0.1',
      '-p',
      String(port),
      '+short',
      '+tcp',
      '+time=2',
      '+tries=1',
      name,
      type,
    ]);
    return stdout.split('\n').filter(Boolean);
  };

  const server: NamedServer = {
    host: '127.0.0.1',
    port,
    keyName,
    secret,
    dig,
    async nsupdate(commands) {
      const script = [`server 127.0.0.1 ${port}`, ...commands, 'send', ''].join('\n');
      await new Promise<void>((resolve, reject) => {
        const p = spawn('nsupdate', ['-v', '-y', `hmac-sha256:${keyName}:${secret}`], {
          stdio: ['pipe', 'ignore', 'pipe'],
        });
        let err = '';
        p.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
        p.once('error', reject);
        p.once('exit', (code) =>
          code === 0
            ? resolve()
            : reject(new Error(`nsupdate failed: ${err}; named: ${stderr.slice(-1500)}`)),
        );
        p.stdin.end(script);
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await expectEventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`named exited: ${stderr}`);
        const soa = await dig(zones[0]!.name, 'SOA');
        if (soa.length === 0) throw new Error(`named not answering yet: ${stderr.slice(-500)}`);
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}
