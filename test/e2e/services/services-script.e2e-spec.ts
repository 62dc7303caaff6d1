import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../identity/api-process';

const ROOT = resolve(__dirname, '../../..');
const run = promisify(execFile);

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * What makes a fresh machine work: `scripts/services` with URLs nothing answers on starts
 * project-local Postgres and Redis under the state dir, says so, exports where they are, finds
 * them again on a second `up`, and `down` stops exactly those. NORM_NO_INSTALL keeps the test
 * from installing packages (Debian's postgresql and redis-server binaries are already here).
 */
describe('scripts/services on a machine where nothing answers the configured URLs', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'norm-services-'));
  // As root the local Postgres runs as the `postgres` user, which must be able to reach it.
  chmodSync(stateDir, 0o755);
  let env: Record<string, string> = {};

  const services = async (...args: string[]): Promise<Outcome> => {
    try {
      const { stdout, stderr } = await run('bash', ['scripts/services', ...args], {
        cwd: ROOT,
        env: { ...process.env, ...env, NORM_STATE_DIR: stateDir, NORM_NO_INSTALL: '1' },
        timeout: 120_000,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };

  afterAll(async () => {
    await services('down');
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('starts project-local servers, exports their URLs, is idempotent, and stops only them', async () => {
    const pgPort = await freePort();
    const redisPort = await freePort();
    env = {
      DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/norm_services_test`,
      REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
    };
    expect((await services('status')).code).toBe(1);

    const up = await services('up');
    expect(up.code, up.stderr).toBe(0);
    const exported: Record<string, string> = {};
    for (const m of up.stdout.matchAll(/^export (\w+)='?([^'\n]*)'?$/gm)) exported[m[1]!] = m[2]!;
    // The configured ports were free, so the local servers took them.
    expect(exported.DATABASE_URL).toBe(env.DATABASE_URL);
    expect(exported.REDIS_URL).toBe(env.REDIS_URL);
    expect(up.stderr).toMatch(/postgres/i);
    expect(up.stderr).toMatch(/redis/i);

    const pg = new Client({ connectionString: exported.DATABASE_URL });
    await pg.connect();
    const [row] = (await pg.query<{ db: string }>('SELECT current_database() AS db')).rows;
    expect(row?.db).toBe('norm_services_test');
    await pg.end();
    const redis = new Redis(exported.REDIS_URL ?? '', { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
    await redis.quit();

    const again = await services('up');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(up.stdout);
    expect((await services('status')).code).toBe(0);

    const down = await services('down');
    expect(down.code, down.stderr).toBe(0);
    const after = await services('status');
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/no project-local postgres running/);
    expect(after.stderr).toMatch(/no project-local redis running/);
  }, 240_000);
});
