import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { jobIdFor, type JobHandlers, runOutboxRelay } from '@norm/core';
import { OutboxWriterRepository, PgOutboxStore } from '@norm/inventory';
import { BullJobPublisher, createBullConnection, JobRunner } from '@norm/queue';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../harness/env';
import { expectEventually } from '../harness/expect-eventually';
import { useTestDatabase } from '../harness/test-database';
import { useRedisPrefix } from '../harness/test-redis';

const run = promisify(execFile);

describe('transactional outbox', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  const executions = new Map<string, number>();
  const connections = [createBullConnection(REDIS_URL), createBullConnection(REDIS_URL)];
  const stops: Array<() => Promise<unknown>> = [];

  const handlers: JobHandlers = {
    PipelineProbe: async ({ operationId }) => {
      executions.set(operationId, (executions.get(operationId) ?? 0) + 1);
      await Promise.resolve();
    },
    // Only the probe travels in these tests; the other jobs need handlers to satisfy the catalogue.
    VmProvision: () => Promise.resolve(),
    InstanceAction: () => Promise.resolve(),
    ApprovalStepRun: () => Promise.resolve(),
  };

  function startWorker(concurrency = 4): { store: PgOutboxStore } {
    const store = new PgOutboxStore(db.dataSource, db.url);
    const publisher = new BullJobPublisher(connections[0]!, prefix);
    const runner = new JobRunner({
      connection: connections[1]!,
      prefix,
      handlers,
      outbox: store,
      concurrency,
      lockDurationMs: 30_000,
    });
    runner.start();
    const abort = new AbortController();
    const relay = runOutboxRelay(store, publisher, { pollMs: 200 }, abort.signal);
    stops.push(async () => {
      abort.abort();
      await relay;
      await runner.stop(5_000);
      await publisher.close();
      await store.close();
    });
    return { store };
  }

  async function commitJob(operationId: string): Promise<void> {
    await db.dataSource.transaction(async (tx) => {
      await new OutboxWriterRepository(tx).enqueue('PipelineProbe', jobIdFor('PipelineProbe', operationId), {
        operationId,
      });
    });
  }

  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });
  afterAll(async () => {
    await Promise.all(connections.map((c) => c.quit()));
  });

  it('runs a job committed while no relay was alive, exactly once', async () => {
    const id = randomUUID();
    await commitJob(id);
    startWorker();
    await expectEventually(() => expect(executions.get(id)).toBe(1));
    await expectEventually(async () => {
      const [row] = await db.dataSource.query<Array<{ dispatched: boolean; completed: boolean }>>(
        `SELECT dispatched_at IS NOT NULL AS dispatched, completed_at IS NOT NULL AS completed FROM outbox WHERE job_id = $1`,
        [jobIdFor('PipelineProbe', id)],
      );
      expect(row).toEqual({ dispatched: true, completed: true });
    });
  });

  it('writes one job for the same intent twice (deterministic job id)', async () => {
    const id = randomUUID();
    await commitJob(id);
    await commitJob(id);
    const rows = await db.dataSource.query<unknown[]>(`SELECT 1 FROM outbox WHERE job_id = $1`, [
      jobIdFor('PipelineProbe', id),
    ]);
    expect(rows).toHaveLength(1);
  });

  it('a relay killed between enqueue and marking dispatched loses nothing and duplicates nothing', async () => {
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of ids) await commitJob(id);
    const [{ pending }] = await db.dataSource.query<[{ pending: number }]>(
      `SELECT count(*)::int AS pending FROM outbox WHERE dispatched_at IS NULL`,
    );
    const child = run(
      process.execPath,
      ['-r', './scripts/register.js', 'test/medium/fixtures/relay-then-die.ts', db.url, REDIS_URL, prefix],
      { cwd: process.cwd() },
    );
    const died = await child.then(
      () => 'exited normally',
      (error: { signal?: string; stdout?: string }) => `${error.signal} after ${error.stdout?.trim()}`,
    );
    expect(died).toBe(`SIGKILL after published ${pending}`);
    const undispatched = await db.dataSource.query<unknown[]>(
      `SELECT 1 FROM outbox WHERE dispatched_at IS NULL AND job_id = ANY($1)`,
      [ids.map((id) => jobIdFor('PipelineProbe', id))],
    );
    expect(undispatched).toHaveLength(3);

    startWorker();
    for (const id of ids) await expectEventually(() => expect(executions.get(id)).toBe(1));
    // Give any duplicate a chance to show up before asserting there is none.
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const id of ids) expect(executions.get(id)).toBe(1);
  });

  it('skips a redelivered job whose outbox row is already completed', async () => {
    const id = randomUUID();
    await commitJob(id);
    startWorker();
    await expectEventually(() => expect(executions.get(id)).toBe(1));
    for (const stop of stops.splice(0)) await stop();

    // Redis lost the finished job (eviction, flush): the relay publishes the row again.
    const publisher = new BullJobPublisher(connections[0]!, prefix);
    const job = await publisher.queue('system').getJob(jobIdFor('PipelineProbe', id));
    await job?.remove();
    await publisher.publish([
      { name: 'PipelineProbe', jobId: jobIdFor('PipelineProbe', id), payload: { operationId: id } },
    ]);
    await publisher.close();
    startWorker();
    await expectEventually(async () => {
      const counts = await new BullJobPublisher(connections[0]!, prefix)
        .queue('system')
        .getJobCounts('completed');
      expect(counts.completed).toBeGreaterThanOrEqual(1);
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(executions.get(id)).toBe(1);
  });

  it('two relays racing over 200 jobs run each exactly once', async () => {
    const ids = Array.from({ length: 200 }, () => randomUUID());
    await db.dataSource.transaction(async (tx) => {
      const writer = new OutboxWriterRepository(tx);
      for (const id of ids)
        await writer.enqueue('PipelineProbe', jobIdFor('PipelineProbe', id), { operationId: id });
    });
    startWorker();
    startWorker(100);
    await expectEventually(() => expect(ids.every((id) => executions.get(id) === 1)).toBe(true), {
      timeoutMs: 20_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(ids.filter((id) => executions.get(id) !== 1)).toEqual([]);
  });

  it('a job committed while a batch is being published is relayed at once, not a poll later', async () => {
    const store = new PgOutboxStore(db.dataSource, db.url);
    const published: string[] = [];
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let inFlight = (): void => undefined;
    const firstBatch = new Promise<void>((resolve) => (inFlight = resolve));
    const abort = new AbortController();
    // A poll far beyond the test's patience: only the NOTIFY can bring the second job in time.
    const relay = runOutboxRelay(
      store,
      {
        publish: async (messages) => {
          published.push(...messages.map((m) => m.jobId));
          if (published.length === 1) {
            inFlight();
            await held;
          }
        },
      },
      { pollMs: 120_000 },
      abort.signal,
    );
    stops.push(async () => {
      abort.abort();
      release();
      await relay;
      await store.close();
    });
    // The relay listens once its first (empty) batch is over.
    await expectEventually(async () => {
      const [row] = await db.dataSource.query<[{ n: number }]>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'norm-outbox-listener'
            AND datname = current_database()`,
      );
      expect(row.n).toBeGreaterThan(0);
    });
    const [first, second] = [randomUUID(), randomUUID()];
    await commitJob(first);
    await firstBatch;
    await commitJob(second);
    // Its NOTIFY reaches the listener while the first batch still publishes.
    await new Promise((resolve) => setTimeout(resolve, 500));
    release();
    await expectEventually(() => expect(published).toContain(jobIdFor('PipelineProbe', second)), {
      timeoutMs: 5_000,
    });
  });

  it('backs off after a failed batch even while new rows keep notifying', async () => {
    const store = new PgOutboxStore(db.dataSource, db.url);
    let attempts = 0;
    const abort = new AbortController();
    // Redis is down: every publish fails. New rows arriving must not cut the backoff short.
    const relay = runOutboxRelay(
      store,
      {
        publish: () => {
          attempts++;
          return Promise.reject(new Error('redis down'));
        },
      },
      { pollMs: 50, errorBackoffMs: 1_000 },
      abort.signal,
    );
    stops.push(async () => {
      abort.abort();
      await relay;
      await store.close();
    });
    await commitJob(randomUUID());
    await expectEventually(() => expect(attempts).toBeGreaterThanOrEqual(1));
    const first = Date.now();
    // A new row (and its NOTIFY) every 50 ms for 1.5 s.
    while (Date.now() - first < 1_500) {
      await commitJob(randomUUID());
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The first failure, then one retry a second later: never one per NOTIFY.
    expect(attempts).toBeLessThanOrEqual(3);
    // Each failure is recorded on the rows it claimed (once the claim is rolled back).
    const [row] = await db.dataSource.query<[{ attempts: number; error: string }]>(
      `SELECT max("dispatch_attempts")::int AS "attempts", max("last_error") AS "error" FROM "outbox"
        WHERE "dispatched_at" IS NULL`,
    );
    expect(row.attempts).toBeGreaterThanOrEqual(1);
    expect(row.error).toBe('redis down');
  });
});
