import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseUrlFor, randomSuffix, REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { dropDatabase } from '../../harness/postgres-admin';
import { useRedisPrefix } from '../../harness/test-redis';
import { freePort } from '../identity/api-process';

const ROOT = resolve(__dirname, '../../..');

/**
 * The README's first command, exactly as a newcomer runs it (`bash scripts/demo`), with only
 * its inputs pointed at a scratch database, port, state dir and Redis prefix: it sets up,
 * migrates, starts api + worker + three simulated hosts, registers them, and stops on Ctrl-C.
 */
describe('bash scripts/demo', () => {
  const prefix = useRedisPrefix();
  const database = `norm_demo_${randomSuffix()}`;
  const stateDir = mkdtempSync(join(tmpdir(), 'norm-demo-'));
  chmodSync(stateDir, 0o755);
  let demo: ChildProcess | undefined;

  afterAll(async () => {
    if (demo && demo.exitCode === null && demo.signalCode === null) {
      const exited = new Promise((r) => demo?.once('exit', r));
      demo.kill('SIGKILL');
      await exited;
    }
    await dropDatabase(database);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('brings up a working fleet of three registered simulated hosts, and Ctrl-C stops it', async () => {
    const port = await freePort();
    demo = spawn('bash', ['scripts/demo'], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: databaseUrlFor(database),
        REDIS_URL,
        NORM_REDIS_PREFIX: prefix,
        NORM_API_PORT: String(port),
        NORM_STATE_DIR: stateDir,
        NORM_NO_INSTALL: '1',
        NORM_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    demo.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    demo.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await expectEventually(() => expect(out).toContain('Press Ctrl-C to stop.'), { timeoutMs: 120_000 });
    expect(out.match(/ registered$/gm)).toHaveLength(3);

    const token = readFileSync(join(stateDir, 'admin-token'), 'utf8').trim();
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const hosts = (await (
      await fetch(`${base}/v1/hosts`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as Array<{ name: string; status: string; totalMemoryMb: number }>;
    expect(hosts.map((h) => h.name).sort()).toEqual(['sim-xen-1', 'sim-xen-2', 'sim-xen-3']);
    for (const h of hosts) expect(h.status).toBe('online');

    const exited = new Promise<number | null>((r) => demo?.once('exit', (code) => r(code)));
    demo.kill('SIGINT');
    expect(await exited).toBe(0);
  }, 180_000);
});
