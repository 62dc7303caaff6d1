import { randomUUID } from 'node:crypto';
import { jobIdFor } from '@norm/core';
import { OutboxWriterRepository } from '@norm/inventory';
import { afterEach, describe, expect, it } from 'vitest';
import { type AppProcess, startApp } from '../../harness/app-process';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';

describe('worker process', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  const started: AppProcess[] = [];

  function worker(env: Record<string, string> = {}): AppProcess {
    const app = startApp('worker', { DATABASE_URL: db.url, REDIS_URL, NORM_REDIS_PREFIX: prefix, ...env });
    started.push(app);
    return app;
  }

  /** What the API does when a state change needs a job: one transaction, no direct enqueue. */
  async function commitProbe(holdMs?: number): Promise<string> {
    const operationId = randomUUID();
    await db.dataSource.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO operations (id, kind, target_type, target_id, requested_by) VALUES ($1, 'probe', 'system', $1, 'test')`,
        [operationId],
      );
      await new OutboxWriterRepository(tx).enqueue('PipelineProbe', jobIdFor('PipelineProbe', operationId), {
        operationId,
        ...(holdMs ? { holdMs } : {}),
      });
    });
    return operationId;
  }

  async function operation(id: string): Promise<{ state: string; steps: Array<{ name: string }> }> {
    const [row] = await db.dataSource.query<Array<{ state: string; steps: Array<{ name: string }> }>>(
      `SELECT state, steps FROM operations WHERE id = $1`,
      [id],
    );
    if (!row) throw new Error('operation missing');
    return row;
  }

  afterEach(async () => {
    await Promise.all(started.splice(0).map((p) => p.stop('SIGKILL')));
  });

  it('runs a job committed before any worker was alive, exactly once', async () => {
    const id = await commitProbe();
    const w = worker();
    await w.waitForLine((l) => l.msg === 'worker started');
    await expectEventually(async () => expect((await operation(id)).state).toBe('succeeded'));
    expect((await operation(id)).steps.filter((s) => s.name === 'probe-received')).toHaveLength(1);
  });

  it('on SIGTERM stops taking jobs and lets the running one finish', async () => {
    const w = worker({ NORM_SHUTDOWN_GRACE: '20s' });
    await w.waitForLine((l) => l.msg === 'worker started');
    const id = await commitProbe(1_500);
    await expectEventually(async () => expect((await operation(id)).steps).toHaveLength(1));
    const exit = await w.stop('SIGTERM');
    expect(exit.code).toBe(0);
    expect(w.lines.find((l) => l.msg === 'worker stopped')).toMatchObject({ how: 'drained' });
    expect((await operation(id)).state).toBe('succeeded');
  });

  it('bounds shutdown by the grace period; another worker finishes the job', async () => {
    const a = worker({ NORM_SHUTDOWN_GRACE: '300ms', NORM_JOB_LOCK: '2s' });
    await a.waitForLine((l) => l.msg === 'worker started');
    const id = await commitProbe(8_000);
    await expectEventually(async () => expect((await operation(id)).steps).toHaveLength(1));
    const before = Date.now();
    const exit = await a.stop('SIGTERM');
    expect(Date.now() - before).toBeLessThan(5_000);
    expect(exit.code).toBe(0);
    expect(a.lines.find((l) => l.msg === 'worker stopped')).toMatchObject({ how: 'forced' });
    expect((await operation(id)).state).toBe('pending');

    const b = worker({ NORM_JOB_LOCK: '2s' });
    await b.waitForLine((l) => l.msg === 'worker started');
    await expectEventually(async () => expect((await operation(id)).state).toBe('succeeded'), {
      timeoutMs: 40_000,
    });
  });

  it('refuses to boot on bad config, naming every bad variable', async () => {
    const w = worker({ NORM_WORKER_CONCURRENCY: 'lots', NORM_SHUTDOWN_GRACE: '30' });
    const exit = await w.exited;
    expect(exit.code).toBe(78);
    const stderr = w.stderr.join('');
    expect(stderr).toContain('NORM_WORKER_CONCURRENCY');
    expect(stderr).toContain('NORM_SHUTDOWN_GRACE');
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });
});
