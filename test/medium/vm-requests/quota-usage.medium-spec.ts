import { randomUUID } from 'node:crypto';
import { PgVmRequestUnitOfWork } from '@norm/inventory';
import { type DataSource } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';
import { insertInstance, insertVmRequest } from '../inventory/builders';

interface UsageRow {
  owner_id: string;
  instances: number;
  vcpus: number;
  memory_mb: number;
}

/**
 * The kept sums (zero rows dropped) next to a recount from the rows themselves, written as
 * the quota read before the counters: in flight, or running with an instance that is neither
 * decommissioned nor failed (looked up in `instances`, not through `instance_live`).
 */
async function keptAndRecounted(
  ds: DataSource,
  owners: readonly string[],
): Promise<{ kept: string[]; recounted: string[] }> {
  const kept = await ds.query<UsageRow[]>(
    `SELECT "owner_id", "instances", "vcpus", "memory_mb" FROM "quota_usage"
      WHERE "owner_id" = ANY($1::uuid[]) AND ("instances" <> 0 OR "vcpus" <> 0 OR "memory_mb" <> 0)`,
    [owners],
  );
  const recounted = await ds.query<UsageRow[]>(
    `SELECT r."owner_id", count(*)::int AS "instances", sum(r."vcpus")::int AS "vcpus",
            sum(r."memory_mb")::int AS "memory_mb"
       FROM "vm_requests" r
      WHERE r."owner_id" = ANY($1::uuid[])
        AND (r."state" IN ('pending_approval', 'approved', 'provisioning')
             OR (r."state" = 'running' AND EXISTS (
                   SELECT 1 FROM "instances" i
                    WHERE i."vm_request_id" = r."id" AND i."state" NOT IN ('decommissioned', 'failed'))))
      GROUP BY r."owner_id"`,
    [owners],
  );
  const show = (rows: UsageRow[]): string[] =>
    rows.map((r) => `${r.owner_id}: ${r.instances} ${r.vcpus} ${r.memory_mb}`).sort();
  return { kept: show(kept), recounted: show(recounted) };
}

/** For the owners given: the tests share one database, so each looks at its own. */
async function expectKeptExact(ds: DataSource, owners: readonly string[]): Promise<void> {
  const { kept, recounted } = await keptAndRecounted(ds, owners);
  expect(kept).toEqual(recounted);
}

const name = (p: string): string => `${p}-${Math.random().toString(36).slice(2, 8)}`;

describe('quota_usage (kept by triggers on vm_requests and instances)', () => {
  const db = useTestDatabase();

  it('follows inserts, transitions, instances coming and going, resizes, owner changes and deletes', async () => {
    const ds = db.dataSource;
    const [a, b] = [randomUUID(), randomUUID()];
    const request = (ownerId: string, state: string, vcpus = 1, memoryMb = 256): Promise<string> =>
      insertVmRequest(ds, { ownerId, state, vcpus, memoryMb });
    const set = (id: string, column: string, value: unknown): Promise<unknown> =>
      ds.query(`UPDATE "vm_requests" SET "${column}" = $2 WHERE "id" = $1`, [id, value]);
    const pending = await request(a, 'pending_approval', 2, 512);
    const approved = await request(a, 'approved', 4, 1024);
    const rejected = await request(b, 'rejected', 8, 2048);
    const provisioning = await request(b, 'provisioning', 1, 128);
    await expectKeptExact(ds, [a, b]);
    expect((await keptAndRecounted(ds, [a, b])).kept).toHaveLength(2);

    // Ends free the quota; approved → provisioning changes nothing counted.
    await set(pending, 'state', 'cancelled');
    await set(approved, 'state', 'provisioning');
    await expectKeptExact(ds, [a, b]);

    // Provisioning makes the instance first; the request becomes running and still counts.
    const instance = await insertInstance(ds, {
      hostId: null,
      domainName: name('q'),
      state: 'provisioning',
      requestId: approved,
      ownerId: a,
    });
    await set(approved, 'state', 'running');
    await expectKeptExact(ds, [a, b]);
    const instanceState = (state: string): Promise<unknown> =>
      ds.query(`UPDATE "instances" SET "state" = $2 WHERE "id" = $1`, [instance, state]);
    for (const state of ['running', 'stopped', 'decommissioning', 'decommissioned']) {
      await instanceState(state);
      await expectKeptExact(ds, [a, b]);
    }
    // A running request whose instance is gone counts nothing, including after a resize.
    await set(approved, 'vcpus', 6);
    await expectKeptExact(ds, [a, b]);
    // Resizes and owner changes move the sums of requests that count.
    await set(provisioning, 'memory_mb', 4096);
    await set(provisioning, 'owner_id', a);
    await expectKeptExact(ds, [a, b]);
    // A request running without any instance row counts nothing.
    await request(b, 'running', 16, 4096);
    await expectKeptExact(ds, [a, b]);
    // One statement over many rows of several owners, as a bulk fix-up would.
    const many = await Promise.all(
      Array.from({ length: 10 }, (_, i) => request(i % 2 ? a : b, 'approved', i + 1, 256)),
    );
    await ds.query(`UPDATE "vm_requests" SET "state" = 'failed' WHERE "id" = ANY($1::uuid[])`, [
      many.slice(0, 7),
    ]);
    await expectKeptExact(ds, [a, b]);
    // History entries and reasons touch nothing a quota counts: no row is even written.
    const before = await ds.query<Array<{ xmin: string }>>(`SELECT xmin::text FROM "quota_usage" ORDER BY 1`);
    await ds.query(`UPDATE "vm_requests" SET "state_reason" = 'noted', "history" = "history" || '[{}]'`);
    expect(await ds.query(`SELECT xmin::text FROM "quota_usage" ORDER BY 1`)).toEqual(before);
    // Deleting an instance is its end too, and deleting requests frees what they held.
    await ds.query(`DELETE FROM "instances" WHERE "id" = $1`, [instance]);
    await ds.query(`DELETE FROM "vm_requests" WHERE "id" = ANY($1::uuid[])`, [[rejected, ...many.slice(7)]]);
    await expectKeptExact(ds, [a, b]);
  });

  it('stays exact when a request becomes running while its instance is decommissioned, in either order', async () => {
    const ds = db.dataSource;
    const owner = randomUUID();
    const pairs = await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const requestId = await insertVmRequest(ds, { ownerId: owner, state: 'provisioning', vcpus: 2 });
        const instanceId = await insertInstance(ds, {
          hostId: null,
          domainName: name(`r${i}`),
          state: 'running',
          requestId,
          ownerId: owner,
        });
        return { requestId, instanceId, requestFirst: i % 2 === 0 };
      }),
    );
    // Each pair: two transactions that change the two rows at once, each holding its change
    // while the other runs, so each trigger runs while the other's change is uncommitted.
    await Promise.all(
      pairs.flatMap(({ requestId, instanceId, requestFirst }) => {
        const toRunning = ds.transaction(async (m) => {
          if (!requestFirst) await m.query(`SELECT pg_sleep(0.02)`);
          await m.query(`UPDATE "vm_requests" SET "state" = 'running' WHERE "id" = $1`, [requestId]);
          await m.query(`SELECT pg_sleep(0.05)`);
        });
        const decommission = ds.transaction(async (m) => {
          if (requestFirst) await m.query(`SELECT pg_sleep(0.02)`);
          await m.query(`UPDATE "instances" SET "state" = 'decommissioned' WHERE "id" = $1`, [instanceId]);
          await m.query(`SELECT pg_sleep(0.05)`);
        });
        return [toRunning, decommission];
      }),
    );
    await expectKeptExact(ds, [owner]);
    const [row] = await ds.query<UsageRow[]>(`SELECT * FROM "quota_usage" WHERE "owner_id" = $1`, [owner]);
    expect(row).toMatchObject({ instances: 0, vcpus: 0 });
  });

  it('stays exact under concurrent inserts and transitions over shared owners', async () => {
    const ds = db.dataSource;
    const owners = Array.from({ length: 5 }, () => randomUUID());
    const states = ['approved', 'cancelled', 'provisioning', 'failed', 'running'];
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        ds.transaction(async (m) => {
          // Several owners per statement, in an order that differs between transactions.
          const mine = [owners[i % 5]!, owners[(i * 3 + 1) % 5]!, owners[(i * 7 + 2) % 5]!];
          const rows = await m.query<Array<{ id: string }>>(
            `INSERT INTO "vm_requests" ("name", "owner_id", "vcpus", "memory_mb", "disk_gb", "lifecycle_class", "state")
             SELECT 'c-' || gen_random_uuid(), o, 1 + g, 256, 1, 'cattle', 'pending_approval'
               FROM unnest($1::uuid[]) WITH ORDINALITY AS x(o, g) RETURNING "id"`,
            [mine],
          );
          await m.query(`UPDATE "vm_requests" SET "state" = $2 WHERE "id" = ANY($1::uuid[])`, [
            rows.map((r) => r.id),
            states[i % 5],
          ]);
        }),
      ),
    );
    await expectKeptExact(ds, owners);
  });

  it('is cleared by TRUNCATE of the requests, and a TRUNCATE of the instances stops running ones counting', async () => {
    const ds = db.dataSource;
    const owner = randomUUID();
    await insertInstance(ds, {
      hostId: null,
      domainName: name('t'),
      ownerId: owner,
      requestId: await insertVmRequest(ds, { ownerId: owner, state: 'running' }),
    });
    await insertVmRequest(ds, { ownerId: owner, state: 'approved' });
    await expectKeptExact(ds, [owner]);
    await ds.query(`TRUNCATE "instances" CASCADE`);
    await expectKeptExact(ds, [owner]);
    expect((await keptAndRecounted(ds, [owner])).kept).toEqual([`${owner}: 1 1 1024`]);
    await ds.query(`TRUNCATE "vm_requests" CASCADE`);
    await expectKeptExact(ds, [owner]);
    expect(await ds.query(`SELECT count(*)::int AS n FROM "quota_usage"`)).toEqual([{ n: 0 }]);
  });

  it('usage() sums an owner or a group’s members and leaves out the request it is asked to', async () => {
    const ds = db.dataSource;
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of [a, b, c])
      await ds.query(
        `INSERT INTO "principals" ("id", "kind", "name") VALUES ($1::uuid, 'person', $1::text)`,
        [id],
      );
    await ds.query(
      `INSERT INTO "principal_groups" ("principal_id", "group_name") VALUES ($1, 'g'), ($2, 'g'), ($3, 'other')`,
      [a, b, c],
    );
    const mine = await insertVmRequest(ds, {
      ownerId: a,
      state: 'pending_approval',
      vcpus: 2,
      memoryMb: 512,
    });
    await insertVmRequest(ds, { ownerId: a, state: 'approved', vcpus: 3, memoryMb: 1024 });
    await insertVmRequest(ds, { ownerId: b, state: 'provisioning', vcpus: 5, memoryMb: 2048 });
    await insertVmRequest(ds, { ownerId: c, state: 'approved', vcpus: 7, memoryMb: 4096 });
    const cancelled = await insertVmRequest(ds, { ownerId: a, state: 'cancelled', vcpus: 11 });
    const uow = new PgVmRequestUnitOfWork(ds);
    const usage = (scope: { ownerId: string } | { group: string }, exclude: string) =>
      uow.run((tx) => tx.requests.usage(scope, exclude));
    expect(await usage({ ownerId: a }, randomUUID())).toEqual({ instances: 2, vcpus: 5, memoryMb: 1536 });
    expect(await usage({ ownerId: a }, mine)).toEqual({ instances: 1, vcpus: 3, memoryMb: 1024 });
    // A request that counts nothing, or is another owner's, takes nothing off.
    expect(await usage({ ownerId: a }, cancelled)).toEqual({ instances: 2, vcpus: 5, memoryMb: 1536 });
    expect(await usage({ ownerId: b }, mine)).toEqual({ instances: 1, vcpus: 5, memoryMb: 2048 });
    expect(await usage({ group: 'g' }, mine)).toEqual({ instances: 2, vcpus: 8, memoryMb: 3072 });
    expect(await usage({ group: 'none' }, mine)).toEqual({ instances: 0, vcpus: 0, memoryMb: 0 });
  });
});
