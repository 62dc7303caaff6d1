import { pipelinedTransaction, prepared } from '@norm/inventory';
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

  describe('finalStatement', () => {
    const INSERT = prepared(`INSERT INTO "pipelined_final" ("n") SELECT unnest($1::int[]) RETURNING "n"`);
    const stored = async (): Promise<number[]> =>
      (await db.dataSource.query<Array<{ n: number }>>(`SELECT "n" FROM "pipelined_final" ORDER BY 1`)).map(
        (r) => r.n,
      );
    /** Whether another session sees `n`, asked until `ms` have passed. */
    const seenFromOutside = async (n: number, ms: number): Promise<boolean> => {
      const other = new Client({ connectionString: db.url });
      await other.connect();
      try {
        for (const until = Date.now() + ms; Date.now() < until;) {
          const { rows } = await other.query(`SELECT 1 FROM "pipelined_final" WHERE "n" = $1`, [n]);
          if (rows.length > 0) return true;
          await new Promise((r) => setTimeout(r, 10));
        }
        return false;
      } finally {
        await other.end();
      }
    };

    it('sends COMMIT behind the last statement: committed before the work has even returned', async () => {
      await db.dataSource.query(`CREATE TABLE IF NOT EXISTS "pipelined_final" ("n" int PRIMARY KEY)`);
      const inside = await pipelinedTransaction(db.dataSource, async (manager, control) => {
        await manager.query(`SELECT pg_advisory_xact_lock(7700002)`);
        const rows = await control.finalStatement<{ n: number }>(INSERT, [[10, 11]]);
        // The work is still running: only a COMMIT already sent can make the rows visible.
        return { rows: rows.map((r) => r.n), visible: await seenFromOutside(11, 2_000) };
      });
      expect(inside).toEqual({ rows: [10, 11], visible: true });
      expect(await lockIsFree(7_700_002)).toBe(true);
    });

    it('rolls everything back when the last statement fails, and hands the connection back usable', async () => {
      await db.dataSource.query(`CREATE TABLE IF NOT EXISTS "pipelined_final" ("n" int PRIMARY KEY)`);
      await db.dataSource.query(`TRUNCATE "pipelined_final"`);
      await db.dataSource.query(`INSERT INTO "pipelined_final" VALUES (1)`);
      const failing = Array.from({ length: 30 }, (_, i) =>
        pipelinedTransaction(db.dataSource, async (manager, control) => {
          await manager.query(`INSERT INTO "pipelined_final" VALUES ($1)`, [100 + i]);
          // 1 is taken: the whole transaction, the first insert included, must go.
          await control.finalStatement(INSERT, [[200 + i, 1]]);
        }),
      );
      for (const outcome of await Promise.allSettled(failing)) {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: '23505' });
      }
      expect(await stored()).toEqual([1]);
      // More transactions than the pool holds: every connection went back, out of its transaction.
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          pipelinedTransaction(db.dataSource, async (_m, control) =>
            (await control.finalStatement<{ n: number }>(INSERT, [[300 + i]])).map((r) => r.n),
          ),
        ),
      );
      expect(answers.flat()).toHaveLength(40);
      expect(await stored()).toHaveLength(41);
    });

    it('refuses a statement after the last one, and says the transaction committed', async () => {
      await db.dataSource.query(`CREATE TABLE IF NOT EXISTS "pipelined_final" ("n" int PRIMARY KEY)`);
      await db.dataSource.query(`TRUNCATE "pipelined_final"`);
      const late = pipelinedTransaction(db.dataSource, async (manager, control) => {
        await control.finalStatement(INSERT, [[5]]);
        // Outside the transaction this insert would commit on its own: it must not run at all.
        await manager.query(`INSERT INTO "pipelined_final" VALUES (6)`);
      });
      const error = await late.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toBe(
        'the transaction committed, but its work failed after its last statement',
      );
      expect(((error as Error).cause as Error).message).toBe(
        'no statement may follow the transaction’s last statement',
      );
      expect(await stored()).toEqual([5]);
      await expect(
        pipelinedTransaction(db.dataSource, async (_m, control) => {
          await control.finalStatement(INSERT, [[7]]);
          return control.finalStatement(INSERT, [[8]]);
        }),
      ).rejects.toThrow('the transaction committed');
      expect(await stored()).toEqual([5, 7]);
    });
  });
});
