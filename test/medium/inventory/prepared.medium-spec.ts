import { prepared, queryPrepared } from '@norm/inventory';
import { QueryFailedError } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';

const db = useTestDatabase();

describe('queryPrepared', () => {
  const statement = prepared(`SELECT $1::int + 1 AS "n", current_setting('application_name') AS "app"`);

  it('names the statement after its text, so one name never stands for two texts', () => {
    expect(prepared(statement.text)).toEqual(statement);
    expect(prepared(`${statement.text} `).name).not.toBe(statement.name);
  });

  it('prepares once per connection and answers like an unnamed query, inside a transaction', async () => {
    await db.dataSource.transaction(async (manager) => {
      const first = await queryPrepared<Array<{ n: number }>>(manager, statement, [1]);
      const second = await queryPrepared<Array<{ n: number }>>(manager, statement, [41]);
      const plain: Array<{ n: number }> = await manager.query(statement.text, [41]);
      expect(first[0]?.n).toBe(2);
      expect(second).toEqual(plain);
      const kept: Array<{ name: string }> = await manager.query(
        `SELECT "name" FROM pg_prepared_statements WHERE "name" = $1`,
        [statement.name],
      );
      expect(kept).toEqual([{ name: statement.name }]);
    });
  });

  it('runs on a pooled connection outside a transaction too', async () => {
    const rows = await queryPrepared<Array<{ n: number }>>(db.dataSource.manager, statement, [9]);
    expect(rows[0]?.n).toBe(10);
  });

  it('fails as TypeORM queries fail (QueryFailedError with the driver error), and the connection stays usable', async () => {
    await db.dataSource.transaction(async (manager) => {
      const broken = prepared(`SELECT 1 / $1::int AS "x"`);
      const error: unknown = await queryPrepared(manager, broken, [0]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(QueryFailedError);
      expect((error as QueryFailedError & { driverError: { code: string } }).driverError.code).toBe('22012');
    });
    const rows = await queryPrepared<Array<{ n: number }>>(db.dataSource.manager, statement, [2]);
    expect(rows[0]?.n).toBe(3);
  });
});
