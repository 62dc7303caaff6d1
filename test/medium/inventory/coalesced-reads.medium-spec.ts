import { randomUUID } from 'node:crypto';
import { PgVmRequestUnitOfWork } from '@norm/inventory';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';
import { insertInstance } from './builders';

const db = useTestDatabase();

describe('instance reads outside transactions (coalesced)', () => {
  let uow: PgVmRequestUnitOfWork;
  const ids: string[] = [];
  beforeAll(async () => {
    uow = new PgVmRequestUnitOfWork(db.dataSource);
    for (let i = 0; i < 40; i++)
      ids.push(await insertInstance(db.dataSource, { hostId: null, domainName: `coalesced-${i}` }));
  });

  it('answers many concurrent reads, each with its own row, an unknown id and a malformed one with nothing', async () => {
    const asked = [...ids, ...ids.slice(0, 10), randomUUID(), 'not-a-uuid', ids[3]!.toUpperCase()];
    const got = await Promise.all(asked.map((id) => uow.read((db) => db.instanceStore.get(id))));
    ids.forEach((id, i) => {
      expect(got[i]?.id).toBe(id);
      expect(got[i]?.name).toBe(`coalesced-${i}`);
    });
    for (let i = 0; i < 10; i++) expect(got[ids.length + i]?.id).toBe(ids[i]);
    expect(got[ids.length + 10]).toBeUndefined();
    expect(got[ids.length + 11]).toBeUndefined();
    expect(got[ids.length + 12]?.id).toBe(ids[3]);
  });

  it('sees a commit that finished before the read was asked, even with reads in flight', async () => {
    const target = ids[0]!;
    for (let round = 0; round < 20; round++) {
      // Keep reads in flight, so the next one queues behind them.
      const busy = ids.map((id) => uow.read((db) => db.instanceStore.get(id)));
      await db.dataSource.query(`UPDATE "instances" SET "version" = "version" + 1 WHERE "id" = $1`, [target]);
      const [{ version }] = await db.dataSource.query<[{ version: number }]>(
        `SELECT "version" FROM "instances" WHERE "id" = $1`,
        [target],
      );
      const read = await uow.read((db) => db.instanceStore.get(target));
      expect(read?.version, `round ${round}`).toBe(version);
      await Promise.all(busy);
    }
  });
});
