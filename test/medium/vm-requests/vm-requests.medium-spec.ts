import {
  type ApprovalStep,
  DomainError,
  NamingStep,
  QuotaStep,
  systemClock,
  VmRequestService,
} from '@norm/core';
import { PgAuditReader, PgVmRequestUnitOfWork } from '@norm/inventory';
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { insertInstance, insertVmRequest } from '../inventory/builders';
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

const db = useTestDatabase();

function service(steps: ApprovalStep[] = [new QuotaStep({ perPrincipal: { instances: 3 }, groups: {} })]) {
  return new VmRequestService(new PgVmRequestUnitOfWork(db.dataSource), steps, systemClock, SERVICE_OPTIONS);
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const rows: Array<{ n: number }> = await db.dataSource.query(
    `SELECT count(*)::int AS n FROM ${sql}`,
    params,
  );
  return rows[0]?.n ?? 0;
}

async function rejection(p: Promise<unknown>): Promise<DomainError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error('expected a domain error');
}

/** The ids of every page, following `nextCursor` from the first page to the last. */
async function everyPage(
  list: (cursor: string | undefined) => Promise<{ items: Array<{ id: string }>; nextCursor?: string }>,
): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    seen.push(...page.items.map((i) => i.id));
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return seen;
}

let cat: Catalogue;
beforeAll(async () => {
  await aHostRow(db.dataSource);
  cat = await aCatalogue(db.dataSource);
});

describe('creating a request', () => {
  it('approves a request within quota at once and writes one VmProvision job, which places it', async () => {
    const me = aPrincipal();
    const svc = service([new QuotaStep({ perPrincipal: {}, groups: {} }), new NamingStep(/^vm-/)]);
    const { request } = await svc.create(me, aRequest(cat));
    expect(request.state).toBe('approved');
    // The request path takes no placement lock: the job's first step places.
    expect(request.hostId).toBeNull();
    expect(request.approvalPlan.map((p) => [p.step, p.status])).toEqual([
      ['quota', 'approved'],
      ['naming', 'approved'],
    ]);
    expect(request.history.map((h) => h.to)).toEqual(['pending_approval', 'approved']);
    expect(await count(`"outbox" WHERE "job_id" = $1`, [`VmProvision.${request.id}`])).toBe(1);
    expect(await count(`"approvals" WHERE "vm_request_id" = $1`, [request.id])).toBe(2);
    const audits = await count(`"audit_events" WHERE "object_id" = $1`, [request.id]);
    expect(audits).toBeGreaterThanOrEqual(3);
    // Written with the request in its one statement, chained at commit in the order appended.
    const actions = await db.dataSource.query<Array<{ action: string }>>(
      `SELECT "action" FROM "audit_events" WHERE "object_id" = $1 ORDER BY "seq"`,
      [request.id],
    );
    expect(actions.map((a) => a.action)).toEqual([
      'vm-request.create',
      'approval.approve',
      'approval.approve',
    ]);
    expect(await new PgAuditReader(db.dataSource).verify()).toMatchObject({ ok: true });

    const uow = new PgVmRequestUnitOfWork(db.dataSource);
    const placed = await uow.run(async (tx) => svc.place(tx, (await tx.requests.get(request.id))!));
    expect(placed).toMatchObject({ state: 'approved', version: request.version + 1 });
    expect(placed.hostId).not.toBeNull();
    // A retried job finds it placed and changes nothing.
    const again = await uow.run(async (tx) => svc.place(tx, (await tx.requests.get(request.id))!));
    expect(again).toMatchObject({ hostId: placed.hostId, version: placed.version });
    expect(await count(`"audit_events" WHERE "object_id" = $1`, [request.id])).toBe(audits + 1);
  });

  it('one placement pass decides every request waiting in its group, each seeing the ones before it', async () => {
    const svc = service([new QuotaStep({ perPrincipal: {}, groups: {} })]);
    // Hard anti-affinity on the one host: a single member fits, whichever job runs first.
    const group = `g-${Date.now().toString(36)}`;
    const made: string[] = [];
    for (let i = 0; i < 3; i++)
      made.push((await svc.create(aPrincipal(), aRequest(cat, { antiAffinityGroup: group }))).request.id);
    const uow = new PgVmRequestUnitOfWork(db.dataSource);
    // The newest request's job takes the lock first: it is placed, then the older ones in turn.
    const newest = await uow.run(async (tx) => svc.place(tx, (await tx.requests.get(made[2]!))!));
    expect(newest.state).toBe('approved');
    expect(newest.hostId).not.toBeNull();
    const states = async (): Promise<string[]> =>
      Promise.all(made.map(async (id) => (await uow.read((r) => r.requests.get(id)))!.state));
    expect(await states()).toEqual(['failed', 'failed', 'approved']);
    const older = (await uow.read((r) => r.requests.get(made[0]!)))!;
    expect(older.error).toMatchObject({ code: 'PlacementImpossible' });
    expect(older.stateReason).toMatch(/anti-affinity/);
    // Their own jobs find them decided and change nothing.
    const again = await uow.run(async (tx) => svc.place(tx, (await tx.requests.get(made[0]!))!));
    expect(again).toMatchObject({ state: 'failed', version: older.version });
    expect(await states()).toEqual(['failed', 'failed', 'approved']);
    const audited = await db.dataSource.query<Array<{ action: string; n: number }>>(
      `SELECT "action", count(*)::int AS "n" FROM "audit_events"
        WHERE "object_id" = ANY($1) AND "actor" = 'system:placement' GROUP BY "action" ORDER BY "action"`,
      [made],
    );
    expect(audited).toEqual([
      { action: 'vm-request.fail', n: 2 },
      { action: 'vm-request.place', n: 1 },
    ]);
  });

  it('a creation batch orders its requests as their jobs: created_at follows the outbox rows', async () => {
    const svc = service([new QuotaStep({ perPrincipal: {}, groups: {} })]);
    // Asked together, they share creation batches; each batch writes its rows in one statement.
    const made = await Promise.all(
      Array.from({ length: 24 }, async () => (await svc.create(aPrincipal(), aRequest(cat))).request.id),
    );
    const rows = await db.dataSource.query<Array<{ id: string; us: string; batched: number }>>(
      `SELECT r."id", (extract(epoch FROM r."created_at") * 1000000)::bigint::text AS "us",
              count(*) OVER (PARTITION BY r."xmin"::text)::int AS "batched"
         FROM "vm_requests" r JOIN "outbox" o ON o."job_id" = 'VmProvision.' || r."id"
        WHERE r."id" = ANY($1) ORDER BY o."id"`,
      [made],
    );
    expect(rows).toHaveLength(24);
    // The test means something only if a batch held several requests.
    expect(Math.max(...rows.map((r) => r.batched))).toBeGreaterThan(5);
    // Placement takes the oldest first (created_at, then id): in job order, strictly, so a burst
    // is spread over the hosts in the order its jobs reach the workers.
    const times = rows.map((r) => BigInt(r.us));
    for (let i = 1; i < times.length; i++) expect(times[i]! > times[i - 1]!).toBe(true);
    const unplaced = await new PgVmRequestUnitOfWork(db.dataSource).read((r) =>
      r.requests.listUnplaced(null, rows[0]!.id, 1000),
    );
    const ours = new Set(made);
    expect(unplaced.filter((u) => ours.has(u.id)).map((u) => u.id)).toEqual(rows.map((r) => r.id));
  });

  it('pages through requests written in the same millisecond without skipping or repeating any', async () => {
    const svc = service([new QuotaStep({ perPrincipal: {}, groups: {} })]);
    const me = aPrincipal();
    // One owner, asked together: they share batches, so many rows fall in one millisecond.
    const made = await Promise.all(
      Array.from({ length: 30 }, async () => (await svc.create(me, aRequest(cat))).request.id),
    );
    const sameMs = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT max(n)::int AS n FROM (SELECT count(*) AS n FROM "vm_requests" WHERE "id" = ANY($1)
        GROUP BY date_trunc('milliseconds', "created_at")) t`,
      [made],
    );
    // The test means something only if pages can end inside a millisecond.
    expect(sameMs[0]!.n).toBeGreaterThan(3);
    const uow = new PgVmRequestUnitOfWork(db.dataSource);
    const ownerId = me.subject.kind === 'principal' ? me.subject.principal.id : '';
    for (const limit of [1, 2, 3, 7]) {
      const seen = await everyPage((cursor) => uow.read((r) => r.requests.list({ ownerId, limit, cursor })));
      expect(seen).toHaveLength(made.length);
      expect(new Set(seen)).toEqual(new Set(made));
    }
  });

  it('pages through instances created within one millisecond without skipping or repeating any', async () => {
    const owner = randomUUID();
    const made: string[] = [];
    for (let i = 0; i < 12; i++)
      made.push(
        await insertInstance(db.dataSource, {
          hostId: null,
          domainName: `pg-${owner.slice(0, 8)}-${i}`,
          ownerId: owner,
        }),
      );
    // As one transaction's rows are: the same millisecond, some the same microsecond.
    await db.dataSource.query(
      `UPDATE "instances" SET "created_at" = '2026-01-01T00:00:00.000Z'::timestamptz + ((random() * 4)::int * 200) * interval '1 microsecond'
        WHERE "id" = ANY($1)`,
      [made],
    );
    const uow = new PgVmRequestUnitOfWork(db.dataSource);
    for (const limit of [1, 5]) {
      const seen = await everyPage((cursor) =>
        uow.read((r) => r.instanceStore.list({ ownerId: owner, limit, cursor })),
      );
      expect(seen).toHaveLength(made.length);
      expect(new Set(seen)).toEqual(new Set(made));
    }
  });

  it('admission and usage count a quota the same way (admission for creating, usage when approvals re-run)', async () => {
    const owner = randomUUID();
    const row = (state: string, vcpus: number, memoryMb: number) =>
      insertVmRequest(db.dataSource, { ownerId: owner, state, vcpus, memoryMb });
    await row('pending_approval', 1, 256);
    await row('approved', 2, 512);
    await row('provisioning', 4, 1024);
    for (const [i, instanceState] of ['running', 'decommissioned', 'failed'].entries())
      await insertInstance(db.dataSource, {
        hostId: null,
        domainName: `q-${owner.slice(0, 8)}-${i}`,
        state: instanceState,
        ownerId: owner,
        requestId: await row('running', 8 << i, 128 << i),
      });
    await row('running', 64, 8192); // running without an instance row: nothing to count
    for (const ended of ['failed', 'cancelled', 'rejected']) await row(ended, 32, 4096);

    const uow = new PgVmRequestUnitOfWork(db.dataSource);
    const [facts] = await uow.run((tx) =>
      tx.requests.admission([
        {
          locks: [],
          ownerId: owner,
          idempotencyKey: null,
          name: `q-${owner.slice(0, 8)}`,
          imageId: cat.image.id,
          networkId: cat.network.id,
        },
      ]),
    );
    // Three in flight and the one running with a live instance.
    expect(facts!.ownerUsage).toEqual({ instances: 4, vcpus: 15, memoryMb: 1920 });
    const usage = await uow.run((tx) => tx.requests.usage({ ownerId: owner }, randomUUID()));
    expect(usage).toEqual(facts!.ownerUsage);
  });

  it('rejects bad references and sizes naming the field, and records nothing', async () => {
    const me = aPrincipal();
    const before = await count(`"vm_requests"`);
    const e1 = await rejection(
      service().create(me, aRequest(cat, { imageId: '00000000-0000-4000-8000-000000000000' })),
    );
    expect(e1.code).toBe('ValidationFailed');
    expect(e1.details.issues).toEqual([{ path: 'imageId', message: 'no such image' }]);
    const e2 = await rejection(service().create(me, aRequest(cat, { vcpus: 64 })));
    expect(e2.details.issues).toEqual([{ path: 'vcpus', message: 'at most 16' }]);
    expect(await count(`"vm_requests"`)).toBe(before);
  });

  it('refuses a name a request in flight already holds', async () => {
    const me = aPrincipal();
    await service().create(me, aRequest(cat, { name: 'taken-name' }));
    const e = await rejection(service().create(aPrincipal(), aRequest(cat, { name: 'taken-name' })));
    expect(e).toMatchObject({ code: 'Conflict', details: { field: 'name' } });
  });
});

describe('idempotency keys', () => {
  it('a replay with the same body returns the original; a different body is a conflict', async () => {
    const me = aPrincipal();
    const body = aRequest(cat, { labels: { b: '2', a: '1' } });
    const first = await service().create(me, body, 'key-1');
    // Same content, different key order: still the same body.
    const again = await service().create(me, { ...body, labels: { a: '1', b: '2' } }, 'key-1');
    expect(again).toMatchObject({ replayed: true, request: { id: first.request.id } });
    const e = await rejection(service().create(me, { ...body, vcpus: 2 }, 'key-1'));
    expect(e).toMatchObject({ code: 'IdempotencyConflict', details: { requestId: first.request.id } });
    expect(await count(`"vm_requests" WHERE "owner_id" = $1`, [ownerOf(me)])).toBe(1);
  });

  it('ten concurrent posts with one key make one request', async () => {
    const me = aPrincipal();
    const body = aRequest(cat);
    const results = await Promise.all(Array.from({ length: 10 }, () => service().create(me, body, 'same')));
    expect(new Set(results.map((r) => r.request.id)).size).toBe(1);
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
  });

  it('the same key from two principals is two requests', async () => {
    const a = await service().create(aPrincipal(), aRequest(cat), 'shared');
    const b = await service().create(aPrincipal(), aRequest(cat), 'shared');
    expect(a.request.id).not.toBe(b.request.id);
  });
});

describe('quota', () => {
  it('counts requests in flight: the fourth of three allowed is rejected with the reason', async () => {
    const me = aPrincipal();
    for (let i = 0; i < 3; i++)
      expect((await service().create(me, aRequest(cat))).request.state).toBe('approved');
    const { request } = await service().create(me, aRequest(cat));
    expect(request.state).toBe('rejected');
    expect(request.stateReason).toMatch(/quota exceeded .* instances would be 4, limit 3/);
  });

  it('twenty concurrent requests of one owner: exactly the quota is approved', async () => {
    const me = aPrincipal();
    const results = await Promise.all(Array.from({ length: 20 }, () => service().create(me, aRequest(cat))));
    expect(results.filter((r) => r.request.state === 'approved')).toHaveLength(3);
    expect(results.filter((r) => r.request.state === 'rejected')).toHaveLength(17);
  });

  it('a cancelled request frees its quota', async () => {
    const me = aPrincipal();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await service().create(me, aRequest(cat))).request.id);
    await service().cancel(me, ids[0]!);
    expect((await service().create(me, aRequest(cat))).request.state).toBe('approved');
  });
});

describe('state machine races', () => {
  it('cancel racing the provision start: exactly one wins, the loser sees the winner state', async () => {
    const me = aPrincipal();
    const svc = service();
    const uow = new PgVmRequestUnitOfWork(db.dataSource);
    for (let round = 0; round < 10; round++) {
      const { request } = await svc.create(me, aRequest(cat));
      const start = uow.run(async (tx) => {
        const r = await tx.requests.get(request.id);
        return svc.transition(tx, r!, 'provisioning', 'system:test', null);
      });
      const results = await Promise.allSettled([svc.cancel(me, request.id), start]);
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      const lost = results.find((r) => r.status === 'rejected');
      expect((lost as PromiseRejectedResult).reason).toMatchObject({ code: 'InvalidTransition' });
      const final = await svc.get(me, request.id);
      expect(['cancelled', 'provisioning']).toContain(final.state);
      if (final.state === 'provisioning') {
        // The cancel lost: once provisioning started it is refused with the current state.
        const e = await rejection(svc.cancel(me, request.id));
        expect(e.details).toMatchObject({ currentState: 'provisioning' });
      }
      await uow.run(async (tx) => {
        const r = await tx.requests.get(request.id);
        if (r?.state === 'provisioning') await svc.transition(tx, r, 'failed', 'system:test', 'cleanup');
      });
    }
  });

  it('a stale version loses: two writers from the same read, one InvalidTransition', async () => {
    const me = aPrincipal();
    const svc = service();
    const uow = new PgVmRequestUnitOfWork(db.dataSource);
    const { request } = await svc.create(me, aRequest(cat));
    const read = await uow.run(async (tx) => (await tx.requests.get(request.id))!);
    await uow.run((tx) => svc.transition(tx, read, 'cancelled', 'a', null));
    const e = await rejection(uow.run((tx) => svc.transition(tx, read, 'provisioning', 'b', null)));
    expect(e).toMatchObject({ code: 'InvalidTransition', details: { currentState: 'cancelled' } });
  });

  it('another requester cannot see or cancel the request (404)', async () => {
    const { request } = await service().create(aPrincipal(), aRequest(cat));
    const stranger = aPrincipal();
    expect(await rejection(service().get(stranger, request.id))).toMatchObject({ code: 'NotFound' });
    expect(await rejection(service().cancel(stranger, request.id))).toMatchObject({ code: 'NotFound' });
  });

  it('a pending step leaves the request waiting and says on what', async () => {
    const human: ApprovalStep = {
      name: 'ops-review',
      kind: 'manual',
      evaluate: () => Promise.resolve({ decision: 'pending', waitingOn: 'group ops', groups: ['ops'] }),
    };
    const me = aPrincipal();
    const { request } = await service([new NamingStep(/./), human]).create(me, aRequest(cat));
    expect(request.state).toBe('pending_approval');
    expect(request.waitingOn).toEqual({ step: 'ops-review', waitingOn: 'group ops', groups: ['ops'] });
    expect((await service().cancel(me, request.id)).state).toBe('cancelled');
  });
});

describe('listing', () => {
  it('pages with a cursor and filters by owner, state and label', async () => {
    const me = aPrincipal();
    const svc = service([]);
    for (let i = 0; i < 5; i++)
      await svc.create(me, aRequest(cat, { labels: { env: i % 2 ? 'prod' : 'dev' } }));
    const p1 = await svc.list(me, { limit: 2 });
    expect(p1.items).toHaveLength(2);
    const p2 = await svc.list(me, { limit: 2, cursor: p1.nextCursor });
    const p3 = await svc.list(me, { limit: 2, cursor: p2.nextCursor });
    expect(p3.items).toHaveLength(1);
    expect(p3.nextCursor).toBeUndefined();
    expect(new Set([...p1.items, ...p2.items, ...p3.items].map((r) => r.id)).size).toBe(5);
    const prod = await svc.list(me, { limit: 50, label: { key: 'env', value: 'prod' } });
    expect(prod.items).toHaveLength(2);
    // Own scope: a requester never sees another owner's requests, whatever filter it sends.
    expect((await svc.list(aPrincipal(), { limit: 50 })).items).toHaveLength(0);
  });
});
