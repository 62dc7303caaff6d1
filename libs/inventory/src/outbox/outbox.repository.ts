import { type JobName, type OutboxMessage, type OutboxStore, type OutboxWriter } from '@norm/core';
import { Client } from 'pg';
import { type DataSource, type EntityManager } from 'typeorm';
import { prepared, queryPrepared } from '../prepared';
import { ReadCoalescer } from '../read-coalescer';

interface OutboxRow {
  id: string;
  job_name: string;
  job_id: string;
  payload: Record<string, unknown>;
}

const ENQUEUE = prepared(
  `INSERT INTO "outbox" ("job_name", "job_id", "payload") VALUES ($1, $2, $3)
   ON CONFLICT ("job_id") DO NOTHING RETURNING "id"`,
);

const COMPLETED = prepared(
  `SELECT "job_id" FROM "outbox" WHERE "job_id" = ANY($1::text[]) AND "completed_at" IS NOT NULL`,
);

/** Writes jobs inside the caller's transaction (pass the transaction's EntityManager). */
export class OutboxWriterRepository implements OutboxWriter {
  constructor(private readonly manager: EntityManager) {}

  async enqueue(name: JobName, jobId: string, payload: Record<string, unknown>): Promise<boolean> {
    const rows = await queryPrepared<unknown[]>(this.manager, ENQUEUE, [
      name,
      jobId,
      JSON.stringify(payload),
    ]);
    return rows.length === 1;
  }
}

/** The relay's side of the outbox, over Postgres with LISTEN/NOTIFY to wake promptly. */
export class PgOutboxStore implements OutboxStore {
  private listener: Client | undefined;
  private listening: Promise<void> | undefined;
  private readonly waiters = new Set<() => void>();
  /** A NOTIFY came since the last batch began: its rows may be newer than that batch's read. */
  private notified = false;

  /**
   * Every job asks before it runs: a burst of a hundred jobs asks at once, and one statement
   * per job would queue the burst's first transactions behind them in the pool.
   */
  private readonly completed: ReadCoalescer<true>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly databaseUrl: string,
  ) {
    this.completed = new ReadCoalescer(async (jobIds) => {
      const rows = await queryPrepared<Array<{ job_id: string }>>(dataSource.manager, COMPLETED, [jobIds]);
      return new Map(rows.map((r) => [r.job_id, true as const]));
    });
  }

  async relayBatch(limit: number, publish: (messages: OutboxMessage[]) => Promise<void>): Promise<number> {
    // Cleared before the read: a NOTIFY from here on may be for a row this batch cannot see.
    this.notified = false;
    let failed: { ids: string[]; error: unknown } | undefined;
    try {
      return await this.dataSource.transaction(async (tx) => {
        const rows: OutboxRow[] = await tx.query(
          `SELECT "id", "job_name", "job_id", "payload" FROM "outbox"
           WHERE "dispatched_at" IS NULL ORDER BY "id" LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [limit],
        );
        if (rows.length === 0) return 0;
        const ids = rows.map((r) => r.id);
        try {
          await publish(
            rows.map((r) => ({ id: r.id, jobName: r.job_name, jobId: r.job_id, payload: r.payload })),
          );
        } catch (error) {
          failed = { ids, error };
          throw error;
        }
        await tx.query(
          `UPDATE "outbox" SET "dispatched_at" = now(), "dispatch_attempts" = "dispatch_attempts" + 1, "last_error" = NULL
           WHERE "id" = ANY($1)`,
          [ids],
        );
        return rows.length;
      });
    } catch (error) {
      // Recorded after the rollback has released the claim: written from inside the
      // transaction, on another connection, it would wait for the claim's row locks forever.
      if (failed)
        await this.dataSource.query(
          `UPDATE "outbox" SET "dispatch_attempts" = "dispatch_attempts" + 1, "last_error" = $2 WHERE "id" = ANY($1)`,
          [failed.ids, (failed.error as Error).message.slice(0, 1000)],
        );
      throw error;
    }
  }

  async waitForWork(ms: number, signal: AbortSignal): Promise<void> {
    await this.ensureListening().catch(() => undefined);
    // A NOTIFY during the last batch would otherwise be lost, and its row wait a whole poll.
    if (this.notified) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
    });
  }

  async isCompleted(jobId: string): Promise<boolean> {
    return (await this.completed.load(jobId)) === true;
  }

  async markCompleted(jobId: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE "outbox" SET "completed_at" = now() WHERE "job_id" = $1 AND "completed_at" IS NULL`,
      [jobId],
    );
  }

  async close(): Promise<void> {
    for (const wake of [...this.waiters]) wake();
    const listener = this.listener;
    this.listener = undefined;
    this.listening = undefined;
    await listener?.end().catch(() => undefined);
  }

  private ensureListening(): Promise<void> {
    this.listening ??= (async () => {
      const client = new Client({
        connectionString: this.databaseUrl,
        application_name: 'norm-outbox-listener',
      });
      client.on('notification', () => {
        this.notified = true;
        for (const wake of [...this.waiters]) wake();
      });
      client.on('error', () => {
        // A lost listener only costs latency (polling still runs); reconnect on next wait.
        this.listener = undefined;
        this.listening = undefined;
        client.end().catch(() => undefined);
      });
      await client.connect();
      await client.query('LISTEN norm_outbox');
      this.listener = client;
    })().catch((error: unknown) => {
      this.listening = undefined;
      throw error;
    });
    return this.listening;
  }
}
