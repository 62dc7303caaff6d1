import {
  type ActingContext,
  type ApprovalStep,
  DomainError,
  QuotaStep,
  systemClock,
  VmRequestService,
} from '@norm/core';
import { PgVmRequestUnitOfWork } from '@norm/inventory';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';
import {
  SERVICE_OPTIONS,
  aCatalogue,
  aHostRow,
  aPrincipal,
  aRequest,
  type Catalogue,
  ownerOf,
} from './builders';

/**
 * Concurrent creations through one service share transactions (KeyedBatcher): these tests
 * submit many at once to one service, so all but the first are admitted together, and check
 * that a batch decides each request as if it had been alone.
 */
const db = useTestDatabase();

const oneService = (steps: ApprovalStep[]): VmRequestService =>
  new VmRequestService(new PgVmRequestUnitOfWork(db.dataSource), steps, systemClock, SERVICE_OPTIONS);

/** How many transactions wrote a vm-request.create event: one per batch. */
async function createTransactions(names: string[]): Promise<number> {
  const rows: Array<{ n: number }> = await db.dataSource.query(
    `SELECT count(DISTINCT r."xmin"::text)::int AS n FROM "vm_requests" r WHERE r."name" = ANY($1)`,
    [names],
  );
  return rows[0]?.n ?? 0;
}

async function outcome(p: Promise<{ request: { state: string } }>): Promise<string> {
  try {
    return (await p).request.state;
  } catch (error) {
    if (error instanceof DomainError) return error.code;
    throw error;
  }
}

/** A principal that exists, with its groups recorded, as quota counting by group reads them. */
async function aMember(...groups: string[]): Promise<ActingContext> {
  const ctx = aPrincipal(['requester'], groups);
  const id = ownerOf(ctx);
  await db.dataSource.query(`INSERT INTO "principals" ("id", "kind", "name") VALUES ($1, 'person', $2)`, [
    id,
    `member-${id.slice(0, 8)}`,
  ]);
  for (const g of groups)
    await db.dataSource.query(
      `INSERT INTO "principal_groups" ("principal_id", "group_name") VALUES ($1, $2)`,
      [id, g],
    );
  return ctx;
}

let cat: Catalogue;
beforeAll(async () => {
  await aHostRow(db.dataSource);
  cat = await aCatalogue(db.dataSource);
});

describe('creating requests in batches', () => {
  it('twenty concurrent requests of one owner share transactions and still approve exactly the quota', async () => {
    const svc = oneService([new QuotaStep({ perPrincipal: { instances: 3 }, groups: {} })]);
    const me = aPrincipal();
    const inputs = Array.from({ length: 20 }, () => aRequest(cat));
    const results = await Promise.all(inputs.map((i) => svc.create(me, i)));
    // Each request counts those decided before it in its own batch, not only those committed.
    expect(results.filter((r) => r.request.state === 'approved')).toHaveLength(3);
    expect(results.filter((r) => r.request.state === 'rejected')).toHaveLength(17);
    // The first went alone, the other nineteen together.
    expect(await createTransactions(inputs.map((i) => i.name))).toBe(2);
  });

  it('counts a group quota across the owners of one batch', async () => {
    const svc = oneService([new QuotaStep({ perPrincipal: {}, groups: { 'batch-ops': { instances: 2 } } })]);
    const [a, b] = [await aMember('batch-ops'), await aMember('batch-ops')];
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => svc.create(i % 2 === 0 ? a : b, aRequest(cat))),
    );
    expect(results.filter((r) => r.request.state === 'approved')).toHaveLength(2);
    expect(results.filter((r) => r.request.state === 'rejected')).toHaveLength(4);
  });

  it('refuses one request of a batch alone: the others are created, the refused leave nothing', async () => {
    const svc = oneService([new QuotaStep({ perPrincipal: {}, groups: {} })]);
    const taken = aRequest(cat);
    await svc.create(aPrincipal(), taken);
    const inputs = [
      aRequest(cat),
      aRequest(cat, { imageId: '00000000-0000-4000-8000-000000000000' }),
      aRequest(cat, { name: taken.name }),
      aRequest(cat),
    ];
    // One owner: the first goes alone, the other three wait for it and then share a batch.
    const me = aPrincipal();
    const results = await Promise.all(inputs.map((i) => outcome(svc.create(me, i))));
    expect(results).toEqual(['approved', 'ValidationFailed', 'Conflict', 'approved']);
    expect(await createTransactions([inputs[0]!.name, inputs[3]!.name])).toBe(2);
    const rows: Array<{ name: string }> = await db.dataSource.query(
      `SELECT "name" FROM "vm_requests" WHERE "name" = ANY($1)`,
      [inputs.map((i) => i.name)],
    );
    // The taken name has its one earlier request only; the bad image's request was never written.
    expect(rows.map((r) => r.name).sort()).toEqual([inputs[0]!.name, taken.name, inputs[3]!.name].sort());
  });

  it('gives one of two concurrent requests for one name the name, the other a conflict', async () => {
    const svc = oneService([new QuotaStep({ perPrincipal: {}, groups: {} })]);
    const name = aRequest(cat).name;
    const results = await Promise.all(
      Array.from({ length: 4 }, () => outcome(svc.create(aPrincipal(), aRequest(cat, { name })))),
    );
    expect(results.sort()).toEqual(['Conflict', 'Conflict', 'Conflict', 'approved']);
  });

  it('runs a batch that fails again request by request: only the culprit gets the error', async () => {
    // A step that breaks (a bug, a lost connection) on one request: the batch's transaction fails.
    const breaking: ApprovalStep = {
      name: 'breaks-on-boom',
      kind: 'automatic',
      evaluate: (s) =>
        s.name.startsWith('boom-')
          ? Promise.reject(new Error('the step broke'))
          : Promise.resolve({ decision: 'approve' }),
    };
    const svc = oneService([breaking]);
    const inputs = [aRequest(cat), aRequest(cat, { name: `boom-${aRequest(cat).name}` }), aRequest(cat)];
    // One owner: the three wait for the first and then share a batch, which the step breaks.
    const me = aPrincipal();
    const [first, ...rest] = [aRequest(cat), ...inputs].map((i) => svc.create(me, i));
    const settled = await Promise.allSettled(rest);
    await first;
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const broken = settled[1];
    expect(broken?.status === 'rejected' && String(broken.reason)).toMatch(/the step broke/);
    const rows: Array<{ n: number }> = await db.dataSource.query(
      `SELECT count(*)::int AS n FROM "vm_requests" WHERE "name" = ANY($1)`,
      [inputs.map((i) => i.name)],
    );
    expect(rows[0]!.n).toBe(2);
  });
});
