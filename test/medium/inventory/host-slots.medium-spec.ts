import { randomUUID } from 'node:crypto';
import { silentLogger } from '@norm/core';
import { PgHostSlots } from '@norm/inventory';
import { afterEach, describe, expect, it } from 'vitest';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';

const db = useTestDatabase();

/** Each instance is one worker's view: its own Postgres session, as in separate processes. */
const opened: PgHostSlots[] = [];
function worker(options: { defaultPerHost?: number; globalCap?: number } = {}): PgHostSlots {
  const slots = new PgHostSlots({
    databaseUrl: db.url,
    defaultPerHost: options.defaultPerHost ?? 2,
    globalCap: options.globalCap ?? 32,
    pollMs: 200,
    logger: silentLogger,
  });
  opened.push(slots);
  return slots;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

/** Counts work running at once, per key, and keeps the highest count seen. */
function meter() {
  const now = new Map<string, number>();
  const peak = new Map<string, number>();
  return {
    peak,
    async during(key: string, ms: number): Promise<void> {
      const n = (now.get(key) ?? 0) + 1;
      now.set(key, n);
      peak.set(key, Math.max(peak.get(key) ?? 0, n));
      await new Promise((r) => setTimeout(r, ms));
      now.set(key, (now.get(key) ?? 1) - 1);
    },
  };
}

describe('PgHostSlots', () => {
  it('holds the per-host cap across workers, not per worker', async () => {
    const host = randomUUID();
    const [a, b, c] = [worker(), worker(), worker()];
    const m = meter();
    await Promise.all(
      [a, b, c].flatMap((w) =>
        Array.from({ length: 4 }, () => w.run(host, undefined, () => m.during('host', 60))),
      ),
    );
    // Three workers at cap 2 would reach 6 with an in-process limiter.
    expect(m.peak.get('host')).toBe(2);
  });

  it("honours the host's own cap and keeps hosts independent", async () => {
    const [big, small] = [randomUUID(), randomUUID()];
    const [a, b] = [worker(), worker()];
    const m = meter();
    await Promise.all(
      [a, b].flatMap((w) => [
        ...Array.from({ length: 4 }, () => w.run(big, 3, () => m.during('big', 60))),
        ...Array.from({ length: 3 }, () => w.run(small, 1, () => m.during('small', 60))),
      ]),
    );
    expect(m.peak.get('big')).toBe(3);
    expect(m.peak.get('small')).toBe(1);
  });

  it('holds the global cap across workers and hosts', async () => {
    const [a, b] = [worker({ globalCap: 3 }), worker({ globalCap: 3 })];
    const m = meter();
    await Promise.all(
      [a, b].flatMap((w) =>
        Array.from({ length: 4 }, () => w.run(randomUUID(), undefined, () => m.during('all', 60))),
      ),
    );
    expect(m.peak.get('all')).toBe(3);
  });

  it('frees the slots of a worker whose session died, and a waiting worker takes them', async () => {
    const host = randomUUID();
    const dying = worker();
    const survivor = worker();
    const stuck: Array<() => void> = [];
    // The dying worker holds both slots with work that never ends (its process is about to be killed).
    for (let i = 0; i < 2; i++)
      void dying
        .run(host, undefined, () => new Promise<void>((resolve) => stuck.push(resolve)))
        .catch(() => undefined);
    await expectEventually(async () => expect(await survivor.inFlight(host)).toBe(2));
    let ran = false;
    const waiting = survivor.run(host, undefined, () => {
      ran = true;
      return Promise.resolve();
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(ran).toBe(false);

    // kill -9 of a worker ends its Postgres session: that alone must free what it held.
    await db.dataSource.query(
      `SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
        WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()`,
    );
    await waiting;
    expect(ran).toBe(true);
    await expectEventually(async () => expect(await survivor.inFlight(host)).toBe(0));
    for (const release of stuck) release();
  });

  it('frees a slot when the work throws', async () => {
    const host = randomUUID();
    const a = worker({ defaultPerHost: 1 });
    await expect(a.run(host, undefined, () => Promise.reject(new Error('xl create failed')))).rejects.toThrow(
      'xl create failed',
    );
    const b = worker({ defaultPerHost: 1 });
    await expect(b.run(host, undefined, () => Promise.resolve('ran'))).resolves.toBe('ran');
    expect(await b.inFlight(host)).toBe(0);
  });
});
