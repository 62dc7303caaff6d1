import { PgAuditLog, PgAuditReader, PgDeferredAuditLog } from '@norm/inventory';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';

describe('audit hash chain (Postgres)', () => {
  const db = useTestDatabase();
  const reader = (): PgAuditReader => new PgAuditReader(db.dataSource);

  it('serializes concurrent appends from many transactions into one unbroken chain', async () => {
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        db.dataSource.transaction(async (tx) => {
          await new PgAuditLog(tx).append({
            actor: `p-${i % 4}`,
            action: i % 2 ? 'thing.update' : 'thing.create',
            objectType: 'thing',
            objectId: `t-${i}`,
            before: i % 2 ? { n: i - 1, nested: { b: 2, a: 1 } } : null,
            after: { n: i, list: [3, 1, 2] },
            reason: 'because',
            requestId: `req-${i}`,
          });
        }),
      ),
    );
    const rows = await db.dataSource.query<Array<{ prev_hash: string; hash: string }>>(
      `SELECT prev_hash, hash FROM audit_events ORDER BY seq`,
    );
    expect(rows).toHaveLength(40);
    for (let i = 1; i < rows.length; i += 1) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
    const last = rows[rows.length - 1]!;
    const verification = await reader().verify();
    expect(verification).toMatchObject({ ok: true, checked: 40 });
    expect(verification.firstBroken).toBeUndefined();
    // The head moved with every append, in the appending transaction.
    expect(verification.head?.hash).toBe(last.hash);
  });

  it('drops the event with the transaction that wrote it, leaving the chain intact', async () => {
    await expect(
      db.dataSource.transaction(async (tx) => {
        await new PgAuditLog(tx).append({
          actor: 'p-x',
          action: 'thing.delete',
          objectType: 'thing',
          objectId: 'gone',
        });
        throw new Error('state change failed');
      }),
    ).rejects.toThrow('state change failed');
    await PgAuditLog.appendAlone(db.dataSource, {
      actor: 'system:reaper',
      action: 'instance.reap-skipped',
      objectType: 'instance',
      objectId: 'i-1',
      reason: 'breaker open',
    });
    const verification = await reader().verify();
    expect(verification.ok).toBe(true);
    expect(verification.checked).toBe(41);
  });

  it('refuses to append outside a transaction, where the chain lock would not hold', async () => {
    await expect(
      new PgAuditLog(db.dataSource.manager).append({
        actor: 'a',
        action: 'b',
        objectType: 'c',
        objectId: null,
      }),
    ).rejects.toThrow(/inside a transaction/);
  });

  it('never stores a secret, even when a caller passes one', async () => {
    const record = await PgAuditLog.appendAlone(db.dataSource, {
      actor: 'p-1',
      action: 'token.create',
      objectType: 'api-token',
      objectId: 'tok',
      after: { name: 'ci', token: 'norm_abc_secret', nested: { secretHash: 'scrypt$…', password: 'x' } },
    });
    const [row] = await db.dataSource.query<Array<{ after: unknown }>>(
      `SELECT after FROM audit_events WHERE seq = $1`,
      [record.seq],
    );
    expect(JSON.stringify(row)).not.toMatch(/norm_abc_secret|scrypt|"x"/);
    expect(row!.after).toEqual({
      name: 'ci',
      token: '[redacted]',
      nested: { secretHash: '[redacted]', password: '[redacted]' },
    });
    expect((await reader().verify()).ok).toBe(true);
  });

  it('filters by actor, action, object and time, and pages newest first with a cursor', async () => {
    const page1 = await reader().list({ actor: 'p-1', limit: 4 });
    expect(page1.items.every((e) => e.actor === 'p-1')).toBe(true);
    expect(page1.items).toHaveLength(4);
    expect(page1.nextCursor).toBeDefined();
    const page2 = await reader().list({ actor: 'p-1', limit: 4, cursor: page1.nextCursor! });
    const page3 = await reader().list({ actor: 'p-1', limit: 4, cursor: page2.nextCursor! });
    const all = [...page1.items, ...page2.items, ...page3.items];
    expect(all.map((e) => e.seq)).toEqual([...all.map((e) => e.seq)].sort((a, b) => Number(b) - Number(a)));
    expect(new Set(all.map((e) => e.seq)).size).toBe(all.length);
    expect(all).toHaveLength(11); // 10 from the concurrent test + the redaction test
    expect(page3.nextCursor).toBeUndefined();

    const byObject = await reader().list({ objectType: 'thing', objectId: 't-7', limit: 10 });
    expect(byObject.items.map((e) => e.objectId)).toEqual(['t-7']);
    const byAction = await reader().list({ action: 'instance.reap-skipped', limit: 10 });
    expect(byAction.items).toHaveLength(1);
    const future = await reader().list({ from: new Date(Date.now() + 60_000), limit: 10 });
    expect(future.items).toHaveLength(0);
    const past = await reader().list({ to: new Date(Date.now() + 60_000), limit: 100 });
    expect(past.items.length).toBe(42);
  });

  it('reports an edited row as the first broken link, and heals when the edit is undone', async () => {
    const [victim] = await db.dataSource.query<Array<{ seq: string; after: unknown }>>(
      `SELECT seq, after FROM audit_events ORDER BY seq OFFSET 10 LIMIT 1`,
    );
    await db.dataSource.query(`UPDATE audit_events SET after = '{"n": 999}'::jsonb WHERE seq = $1`, [
      victim!.seq,
    ]);
    const broken = await reader().verify();
    expect(broken.ok).toBe(false);
    expect(broken.checked).toBe(10);
    expect(broken.firstBroken).toMatchObject({ seq: String(victim!.seq), problem: 'hash-mismatch' });

    await db.dataSource.query(`UPDATE audit_events SET after = $2::jsonb WHERE seq = $1`, [
      victim!.seq,
      JSON.stringify(victim!.after),
    ]);
    expect((await reader().verify()).ok).toBe(true);
  });

  it('reports the row after a deleted one', async () => {
    const rows = await db.dataSource.query<Array<{ seq: string }>>(
      `SELECT seq FROM audit_events ORDER BY seq OFFSET 20 LIMIT 2`,
    );
    await db.dataSource.query(`DELETE FROM audit_events WHERE seq = $1`, [rows[0]!.seq]);
    const broken = await reader().verify();
    expect(broken.ok).toBe(false);
    expect(broken.firstBroken).toMatchObject({ seq: String(rows[1]!.seq), problem: 'prev-hash-mismatch' });
  });
});

describe('audit head: deleting the newest events (Postgres)', () => {
  const db = useTestDatabase();
  const reader = (): PgAuditReader => new PgAuditReader(db.dataSource);
  const append = (i: number): Promise<unknown> =>
    PgAuditLog.appendAlone(db.dataSource, {
      actor: 'p-1',
      action: 'thing.update',
      objectType: 'thing',
      objectId: `t-${i}`,
      after: { n: i },
    });
  const newest = async (n: number): Promise<string[]> =>
    (
      await db.dataSource.query<Array<{ seq: string }>>(
        `SELECT seq FROM audit_events ORDER BY seq DESC LIMIT $1`,
        [n],
      )
    ).map((r) => String(r.seq));

  it('starts from the genesis head on an empty log, and moves it on every append', async () => {
    await expect(reader().verify()).resolves.toMatchObject({ ok: true, checked: 0, head: { seq: '0' } });
    for (let i = 0; i < 5; i += 1) await append(i);
    const [top] = await newest(1);
    await expect(reader().verify()).resolves.toMatchObject({ ok: true, checked: 5, head: { seq: top } });
  });

  it('reports deletion of the newest row as truncation, naming the missing seq', async () => {
    const [top, second] = await newest(2);
    await db.dataSource.query(`DELETE FROM audit_events WHERE seq = $1`, [top]);
    const broken = await reader().verify();
    expect(broken).toMatchObject({
      ok: false,
      checked: 4,
      firstBroken: { seq: top, problem: 'truncated' },
    });
    expect(broken.firstBroken?.detail).toContain(`ends at seq ${second}`);
  });

  it('keeps the deletion visible after the log moves on: the next event chains onto the deleted one', async () => {
    await append(99);
    const [next] = await newest(1);
    await expect(reader().verify()).resolves.toMatchObject({
      ok: false,
      firstBroken: { seq: next, problem: 'prev-hash-mismatch' },
    });
  });

  it('reports several newest rows deleted at once, and a deleted head row', async () => {
    const [top] = await newest(1);
    await db.dataSource.query(
      `DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events ORDER BY seq DESC LIMIT 3)`,
    );
    await expect(reader().verify()).resolves.toMatchObject({
      ok: false,
      firstBroken: { seq: top, problem: 'truncated' },
    });
    await db.dataSource.query(`DELETE FROM audit_head`);
    await expect(reader().verify()).resolves.toMatchObject({
      ok: false,
      firstBroken: { problem: 'head-missing' },
    });
    // Fail closed: no event is appended without the anchor, so nothing can paper over the gap.
    await expect(append(100)).rejects.toThrow(/audit_head row is missing/);
  });
});

describe('deferred audit appends (Postgres)', () => {
  const db = useTestDatabase();
  const reader = (): PgAuditReader => new PgAuditReader(db.dataSource);

  it('deferred appends (written at commit, several per INSERT) interleave with immediate ones in one chain', async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        db.dataSource.transaction(async (tx) => {
          if (i % 3 === 0) {
            await new PgAuditLog(tx).append({
              actor: 'now',
              action: 'thing.now',
              objectType: 'thing',
              objectId: `n-${i}`,
            });
            return;
          }
          const audit = new PgDeferredAuditLog(tx);
          for (let k = 0; k < 3; k++)
            await audit.append({
              actor: 'later',
              action: `thing.step${k}`,
              objectType: 'thing',
              objectId: `d-${i}`,
              after: { k, nested: { b: 2, a: 1 } },
            });
          await audit.flush();
        }),
      ),
    );
    const verification = await reader().verify();
    expect(verification).toMatchObject({ ok: true, checked: 7 + 13 * 3 });
    const steps = await db.dataSource.query<Array<{ action: string }>>(
      `SELECT "action" FROM "audit_events" WHERE "object_id" = 'd-1' ORDER BY "seq"`,
    );
    expect(steps.map((r) => r.action)).toEqual(['thing.step0', 'thing.step1', 'thing.step2']);
  });

  it('chains in Postgres exactly as verify recomputes in the process: multi-byte text, escapes, nulls', async () => {
    const awkward = 'Zoë 🚀 Ångström "quoted" \\ back\nslash\ttab \u2028 end';
    await db.dataSource.transaction(async (tx) => {
      const audit = new PgDeferredAuditLog(tx);
      await audit.append({ actor: awkward, action: 'thing.odd', objectType: 'thing', objectId: null });
      await audit.append({
        actor: 'p',
        action: 'thing.odd',
        objectType: 'thing',
        objectId: awkward,
        before: { [awkward]: [awkward, 1.5, null, true] },
        after: { z: { y: awkward }, a: [] },
        reason: awkward,
        requestId: 'req-ü',
      });
      await audit.flush();
    });
    const verification = await reader().verify();
    expect(verification.ok).toBe(true);
    const rows = await db.dataSource.query<Array<{ actor: string; reason: string | null }>>(
      `SELECT "actor", "reason" FROM "audit_events" WHERE "action" = 'thing.odd' ORDER BY "seq"`,
    );
    expect(rows.map((r) => [r.actor, r.reason])).toEqual([
      [awkward, null],
      ['p', awkward],
    ]);
  });

  it('stages without the chain lock and seals at commit: an open transaction holds up no other', async () => {
    const open = db.dataSource.createQueryRunner();
    await open.connect();
    try {
      await open.startTransaction();
      const staged = new PgDeferredAuditLog(open.manager);
      await staged.append({ actor: 'p', action: 'thing.slow', objectType: 'thing', objectId: 'slow' });
      await staged.flush();
      // Would wait on the head's row lock until `open` ends if flushing had taken it.
      await db.dataSource.transaction(async (tx) => {
        await tx.query(`SET LOCAL lock_timeout = '2s'`);
        const quick = new PgDeferredAuditLog(tx);
        await quick.append({ actor: 'p', action: 'thing.quick', objectType: 'thing', objectId: 'quick' });
        await quick.flush();
      });
      const chained = async (): Promise<string[]> =>
        (
          await db.dataSource.query<Array<{ object_id: string }>>(
            `SELECT "object_id" FROM "audit_events" WHERE "object_id" IN ('slow', 'quick') ORDER BY "seq"`,
          )
        ).map((r) => r.object_id);
      expect(await chained()).toEqual(['quick']);
      await open.commitTransaction();
      // Chain order is commit order.
      expect(await chained()).toEqual(['quick', 'slow']);
    } finally {
      await open.release();
    }
    expect(await reader().verify()).toMatchObject({ ok: true });
    const left = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS "n" FROM "audit_pending"`,
    );
    expect(left[0]?.n).toBe(0);
  });

  it('a rolled-back transaction leaves nothing staged and nothing chained', async () => {
    const failing = db.dataSource.transaction(async (tx) => {
      const audit = new PgDeferredAuditLog(tx);
      await audit.append({ actor: 'p', action: 'thing.undone', objectType: 'thing', objectId: 'undone' });
      await audit.flush();
      throw new Error('the change failed after its audit was staged');
    });
    await expect(failing).rejects.toThrow(/staged/);
    const rows = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT (SELECT count(*) FROM "audit_pending")::int + (SELECT count(*) FROM "audit_events" WHERE "object_id" = 'undone')::int AS "n"`,
    );
    expect(rows[0]?.n).toBe(0);
    expect(await reader().verify()).toMatchObject({ ok: true });
  });

  it('fails closed when the head row is missing, and writes nothing', async () => {
    const before = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS "n" FROM "audit_events"`,
    );
    const flushWithoutHead = db.dataSource.transaction(async (tx) => {
      await tx.query(`DELETE FROM "audit_head"`);
      const audit = new PgDeferredAuditLog(tx);
      await audit.append({ actor: 'p', action: 'thing.lost', objectType: 'thing', objectId: 'x' });
      await audit.flush();
    });
    await expect(flushWithoutHead).rejects.toThrow(/audit_head row is missing/);
    const after = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS "n" FROM "audit_events"`,
    );
    expect(after).toEqual(before);
  });
});
