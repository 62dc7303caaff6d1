import { PgReaperStore } from '@norm/inventory';
import { type DataSource } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';
import { insertInstance } from '../inventory/builders';
import { aHostRow } from '../vm-requests/builders';

interface CountRow {
  host_id: string | null;
  lifecycle_class: string;
  running: number;
}

const key = (r: CountRow): string => `${r.host_id ?? '-'}/${r.lifecycle_class}`;

/** The kept counts (zeros dropped) next to a count of the rows themselves. */
async function keptAndActual(ds: DataSource): Promise<{ kept: string[]; actual: string[] }> {
  const kept = await ds.query<CountRow[]>(
    `SELECT "host_id", "lifecycle_class", "running" FROM "running_instance_counts" WHERE "running" > 0`,
  );
  const actual = await ds.query<CountRow[]>(
    `SELECT "host_id", "lifecycle_class", count(*)::int AS "running" FROM "instances"
      WHERE "state" = 'running' GROUP BY "host_id", "lifecycle_class"`,
  );
  const show = (rows: CountRow[]): string[] => rows.map((r) => `${key(r)}=${r.running}`).sort();
  return { kept: show(kept), actual: show(actual) };
}

async function expectCountsExact(ds: DataSource): Promise<void> {
  const { kept, actual } = await keptAndActual(ds);
  expect(kept).toEqual(actual);
}

const name = (p: string): string => `${p}-${Math.random().toString(36).slice(2, 8)}`;

describe('running_instance_counts (kept by triggers on instances)', () => {
  const db = useTestDatabase();

  it('follows inserts, state changes, moves between hosts, class changes and deletes', async () => {
    const ds = db.dataSource;
    const [a, b] = [await aHostRow(ds, { name: name('ha') }), await aHostRow(ds, { name: name('hb') })];
    const ids = [
      await insertInstance(ds, { hostId: a.id, domainName: name('c') }),
      await insertInstance(ds, { hostId: a.id, domainName: name('c') }),
      await insertInstance(ds, { hostId: a.id, domainName: name('p'), lifecycleClass: 'pet' }),
      await insertInstance(ds, { hostId: b.id, domainName: name('c'), state: 'provisioning' }),
      await insertInstance(ds, { hostId: null, domainName: name('c') }),
    ];
    await expectCountsExact(ds);
    expect((await keptAndActual(ds)).kept).toHaveLength(3);

    await ds.query(`UPDATE "instances" SET "state" = 'running' WHERE "id" = $1`, [ids[3]]);
    await ds.query(`UPDATE "instances" SET "state" = 'stopped' WHERE "id" = $1`, [ids[0]]);
    await expectCountsExact(ds);
    await ds.query(`UPDATE "instances" SET "host_id" = $2 WHERE "id" = $1`, [ids[1], b.id]);
    await ds.query(`UPDATE "instances" SET "lifecycle_class" = 'cattle' WHERE "id" = $1`, [ids[2]]);
    // Setting a column to the value it has is not a change.
    await ds.query(`UPDATE "instances" SET "state" = 'running' WHERE "state" = 'running'`);
    await expectCountsExact(ds);
    // One statement changing several rows at once, as a bulk fix-up would.
    await ds.query(`UPDATE "instances" SET "state" = 'decommissioning' WHERE "host_id" = $1`, [b.id]);
    await expectCountsExact(ds);
    await ds.query(`DELETE FROM "instances" WHERE "id" = ANY($1::uuid[])`, [[ids[1], ids[4]]]);
    await expectCountsExact(ds);
    // Heartbeats touch neither state nor host nor class: the counts' row is not even locked.
    await ds.query(`UPDATE "instances" SET "last_heartbeat_at" = now(), "heartbeat_deadline_at" = now()`);
    await expectCountsExact(ds);
  });

  it('stays exact under concurrent transitions on one host', async () => {
    const ds = db.dataSource;
    const host = await aHostRow(ds, { name: name('hc') });
    const ids = await Promise.all(
      Array.from({ length: 24 }, () => insertInstance(ds, { hostId: host.id, domainName: name('c') })),
    );
    const states = ['stopped', 'running', 'stopping', 'running', 'decommissioning'];
    await Promise.all(
      ids.flatMap((id, i) =>
        states.map((_state, k) =>
          ds.transaction(async (m) => {
            await m.query(`UPDATE "instances" SET "state" = $2 WHERE "id" = $1`, [id, states[(i + k) % 5]]);
            await m.query(`SELECT pg_sleep(0.001)`);
          }),
        ),
      ),
    );
    await expectCountsExact(ds);
  });

  it('is emptied by TRUNCATE with the instances', async () => {
    const ds = db.dataSource;
    const host = await aHostRow(ds, { name: name('ht') });
    await insertInstance(ds, { hostId: host.id, domainName: name('c') });
    await ds.query(`TRUNCATE "instances" CASCADE`);
    await expectCountsExact(ds);
    await insertInstance(ds, { hostId: host.id, domainName: name('c') });
    await expectCountsExact(ds);
  });
});

describe('PgReaperStore counts', () => {
  const db = useTestDatabase();

  it('reports live, silent and intake exactly as counting every row would', async () => {
    const ds = db.dataSource;
    const host = await aHostRow(ds, { name: name('hf') });
    const now = new Date();
    const ago = (s: number): Date => new Date(now.getTime() - s * 1000);
    const beats: Array<[Date | null, Date | null, 'cattle' | 'pet', string]> = [
      [ago(10), ago(-170), 'cattle', 'running'], // beat lately
      [ago(20), ago(-160), 'cattle', 'running'],
      [ago(400), ago(220), 'cattle', 'running'], // silent past its deadline
      [ago(400), ago(220), 'pet', 'running'], // a silent pet is no silent cattle
      [null, ago(-100), 'cattle', 'running'], // never beat yet: not intake
      [ago(5), ago(-175), 'cattle', 'stopped'], // not running: counted nowhere
    ];
    for (const [last, deadline, lifecycleClass, state] of beats) {
      const id = await insertInstance(ds, { hostId: host.id, domainName: name('i'), lifecycleClass, state });
      await ds.query(
        `UPDATE "instances" SET "last_heartbeat_at" = $2, "heartbeat_deadline_at" = $3 WHERE "id" = $1`,
        [id, last, deadline],
      );
    }
    const store = new PgReaperStore(ds, { cattleS: 180, petS: 180 });
    expect(await store.fleetCounts(now, ago(60))).toEqual({
      liveCattle: 4,
      silentCattle: 1,
      intakeRecent: 2,
    });
    const [record] = await store.hosts([host.id], now);
    expect(record).toMatchObject({ id: host.id, liveCattle: 4, silentCattle: 1 });
  });
});
