import { silentLogger } from '@norm/core';
import { PgLeaderLock } from '@norm/inventory';
import { describe, expect, it } from 'vitest';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';

const db = useTestDatabase();

describe('PgLeaderLock', () => {
  const lock = (name = 'host-sync') =>
    new PgLeaderLock({
      databaseUrl: db.url,
      name: `${db.name}:${name}`,
      checkIntervalMs: 50,
      logger: silentLogger,
    });

  it('grants one leader at a time and passes leadership on release', async () => {
    const a = await lock().tryAcquire();
    expect(a).not.toBeNull();
    expect(await lock().tryAcquire()).toBeNull();
    const other = await lock('other').tryAcquire();
    expect(other).not.toBeNull();
    await other?.release();
    await a?.release();
    const b = await lock().tryAcquire();
    expect(b).not.toBeNull();
    await b?.release();
  });

  it('signals loss when its connection dies, and the lock is free again', async () => {
    const a = await lock().tryAcquire();
    expect(a).not.toBeNull();
    await db.dataSource.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'norm-leader:' || $1`,
      [`${db.name}:host-sync`],
    );
    await expectEventually(() => expect(a?.lost.aborted).toBe(true), { timeoutMs: 5000 });
    const b = await expectEventually(async () => {
      const l = await lock().tryAcquire();
      expect(l).not.toBeNull();
      return l;
    });
    await b?.release();
    await a?.release();
  });
});
