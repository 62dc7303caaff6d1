import { pipelinedTransaction } from '@norm/inventory';
import { Client } from 'pg';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';

const db = useTestDatabase();

/** Whether another session can take the advisory lock `key` now (released again at once). */
async function lockIsFree(key: number): Promise<boolean> {
  const other = new Client({ connectionString: db.url });
  await other.connect();
  try {
    const { rows } = await other.query<{ free: boolean }>(`SELECT pg_try_advisory_lock($1) AS "free"`, [key]);
    if (rows[0]?.free) await other.query(`SELECT pg_advisory_unlock($1)`, [key]);
    return rows[0]?.free ?? false;
  } finally {
    await other.end();
  }
}

describe('pipelinedTransaction', () => {
  it('runs the first statement inside the transaction: its transaction lock is held until COMMIT', async () => {
    const key = 7_700_001;
    const heldInside = await pipelinedTransaction(db.dataSource, async (manager) => {
      // The very first statement, sent while BEGIN is still unanswered.
      await manager.query(`SELECT pg_advisory_xact_lock($1)`, [key]);
      return !(await lockIsFree(key));
    });
    // Outside a transaction the lock would have gone with its statement.
    expect(heldInside).toBe(true);
    expect(await lockIsFree(key)).toBe(true);
  });

  it('commits what the work wrote, and rolls all of it back when the work throws', async () => {
    await db.dataSource.query(`CREATE TABLE IF NOT EXISTS "pipelined_probe" ("n" int)`);
    await pipelinedTransaction(db.dataSource, async (manager) => {
      await manager.query(`INSERT INTO "pipelined_probe" VALUES (1)`);
    });
    await expect(
      pipelinedTransaction(db.dataSource, async (manager) => {
        await manager.query(`INSERT INTO "pipelined_probe" VALUES (2)`);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    // A failed statement aborts the transaction; the connection goes back to the pool usable.
    await expect(
      pipelinedTransaction(db.dataSource, async (manager) => {
        await manager.query(`INSERT INTO "pipelined_probe" VALUES (3)`);
        await manager.query(`SELECT 1 / 0`);
      }),
    ).rejects.toThrow(/division by zero/);
    const rows: Array<{ n: number }> = await db.dataSource.query(
      `SELECT "n" FROM "pipelined_probe" ORDER BY 1`,
    );
    expect(rows.map((r) => r.n)).toEqual([1]);
    // Twice the pool's size: every connection was handed back.
    const answers = await Promise.all(
      Array.from({ length: 40 }, () =>
        pipelinedTransaction(db.dataSource, async (manager) => {
          const [{ n }] = await manager.query<[{ n: number }]>(`SELECT 1 AS "n"`);
          return n;
        }),
      ),
    );
    expect(answers.every((n) => n === 1)).toBe(true);
  });
});
