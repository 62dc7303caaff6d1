import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../harness/app-process';
import { databaseUrlFor, randomSuffix } from '../../harness/env';
import { adminQuery, dropDatabase } from '../../harness/postgres-admin';
import { useRedisPrefix } from '../../harness/test-redis';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..', '..');
const PLAYBOOK = join(ROOT, 'ansible', 'playbooks', 'deploy-norm.yml');
const UNITS = { api: 'norm-e2e-api', worker: 'norm-e2e-worker' };

/**
 * Runs ansible/playbooks/deploy-norm.yml for real against this machine (--connection=local)
 * into a scratch prefix, database, Redis prefix and port, then checks the api and the worker
 * are healthy and stops them.
 *
 * This machine has no systemd as PID 1 (containers, CI), so the play runs in its direct mode:
 * deploy/bin/norm-unit starts the ExecStart lines of the installed units
 * (deploy/systemd/norm-*.service with this run's paths) as their User=, with their
 * EnvironmentFile=. The systemd mode itself (systemctl enable/start) is not exercised here.
 */
describe('deploy-norm.yml on this machine (direct mode: no systemd as PID 1)', () => {
  const redisPrefix = useRedisPrefix();
  const database = `norm_deploy_${randomSuffix()}`;
  let scratch: string;
  let prefix: string;
  let port: number;

  const unitFile = (unit: string): string => join(scratch, 'systemd', `${unit}.service`);
  const runDir = (): string => join(prefix, 'run');
  const normUnit = (action: string, unit: string) =>
    run('python3', [
      join(prefix, 'app', 'deploy', 'bin', 'norm-unit'),
      action,
      unitFile(unit),
      '--run-dir',
      runDir(),
    ]);

  async function playbook(): Promise<string> {
    const extraVars = {
      norm_targets: 'localhost',
      // Already root here; become would need sudo for nothing.
      norm_become: false,
      norm_prefix: prefix,
      norm_env_file: join(scratch, 'etc', 'norm.env'),
      norm_unit_dir: join(scratch, 'systemd'),
      norm_unit_names: UNITS,
      norm_api_port: port,
      norm_database_url: databaseUrlFor(database),
      norm_redis_url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0',
      norm_redis_prefix: redisPrefix,
      // This checkout's node and node_modules: no registry access needed.
      norm_node_install: 'none',
      norm_node_bin: process.execPath,
      norm_node_modules: 'copy',
      norm_service_manager: 'direct',
    };
    const { stdout } = await run(
      'ansible-playbook',
      ['-i', 'localhost,', '--connection=local', PLAYBOOK, '-e', JSON.stringify(extraVars)],
      {
        cwd: ROOT,
        env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0' },
        maxBuffer: 16 << 20,
      },
    ).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`ansible-playbook failed:\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
    });
    return stdout;
  }

  function recap(stdout: string): Record<string, number> {
    const line = stdout.split('\n').find((l) => l.startsWith('localhost') && l.includes('ok='));
    if (!line) throw new Error(`no play recap in:\n${stdout}`);
    return Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
  }

  /** The tasks that reported a change, for a readable failure when a re-run is not a no-op. */
  function changedTasks(stdout: string): string[] {
    let task = '';
    const changed: string[] = [];
    for (const line of stdout.split('\n')) {
      const header = /^(?:TASK|RUNNING HANDLER) \[(.+)\]/.exec(line);
      if (header) task = header[1]!;
      else if (line.startsWith('changed:') && changed.at(-1) !== task) changed.push(task);
    }
    return changed;
  }

  async function pid(unit: string): Promise<number> {
    return Number((await readFile(join(runDir(), `${unit}.pid`), 'utf8')).trim());
  }

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'norm-deploy-'));
    // The service user must be able to reach the prefix inside it.
    await chmod(scratch, 0o755);
    prefix = join(scratch, 'opt');
    port = await freePort();
    // Empty, not cloned from the migrated template: the play is what runs the migrations.
    await adminQuery(`CREATE DATABASE "${database}"`);
  });

  afterAll(async () => {
    for (const unit of Object.values(UNITS)) await normUnit('stop', unit).catch(() => undefined);
    await dropDatabase(database);
    await rm(scratch, { recursive: true, force: true });
  });

  it('installs, migrates and starts api and worker, healthy; a second run changes nothing', async () => {
    const first = recap(await playbook());
    expect(first).toMatchObject({ failed: 0, unreachable: 0 });
    expect(first.changed).toBeGreaterThan(0);

    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ok' });
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const workerLog = await readFile(join(runDir(), `${UNITS.worker}.log`), 'utf8');
    expect(workerLog).toContain('"msg":"worker started"');

    // The units run as the service user, with the environment file's settings.
    const apiPid = await pid(UNITS.api);
    const workerPid = await pid(UNITS.worker);
    const { stdout: users } = await run('ps', ['-o', 'user=', '-p', `${apiPid},${workerPid}`]);
    expect(users.trim().split('\n')).toEqual(['norm', 'norm']);
    const envMode = (await run('stat', ['-c', '%a %U', join(scratch, 'etc', 'norm.env')])).stdout.trim();
    expect(envMode).toBe('600 root');
    const pg = new Client({ connectionString: databaseUrlFor(database) });
    await pg.connect();
    const migrated = await pg
      .query<{ n: string }>('SELECT count(*) AS n FROM schema_migrations')
      .finally(() => pg.end());
    expect(Number(migrated.rows[0]?.n)).toBeGreaterThan(0);

    const secondOutput = await playbook();
    expect(changedTasks(secondOutput)).toEqual([]);
    expect(recap(secondOutput)).toMatchObject({ failed: 0, changed: 0 });
    expect(await pid(UNITS.api)).toBe(apiPid);
    expect(await pid(UNITS.worker)).toBe(workerPid);

    for (const unit of Object.values(UNITS)) {
      const { stdout } = await normUnit('stop', unit);
      expect(JSON.parse(stdout)).toMatchObject({ changed: true });
    }
    await expect(fetch(`http://127.0.0.1:${port}/readyz`)).rejects.toThrow();
    expect(await readFile(join(runDir(), `${UNITS.worker}.log`), 'utf8')).toContain('"msg":"worker stopped"');
  }, 480_000);
});
