import {
  type AuditEventInput,
  type Clock,
  DEFAULT_REAPER_OPTIONS,
  type DomainSummary,
  heartbeatOptionsOf,
  InstanceService,
  loadConfig,
  InstanceServiceReaperActions,
  Reaper,
  type ReaperActions,
  silentLogger,
  type XenHost,
  type XenHostFactory,
} from '@norm/core';
import { OperationRepository, PgAuditLog, PgReaperStore, PgVmRequestUnitOfWork } from '@norm/inventory';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';
import { insertInstance } from '../inventory/builders';
import { aHostRow } from '../vm-requests/builders';

const MIN = 60_000;

class FakeClock implements Clock {
  t = Date.now();
  now(): Date {
    return new Date(this.t);
  }
  sleep(): Promise<void> {
    return Promise.resolve();
  }
}

/** Hosts whose `xl list` holds exactly the names in `running`. */
function xenWith(running: Set<string>): XenHostFactory {
  const listDomains = (): Promise<DomainSummary[]> =>
    Promise.resolve(
      [...running].map((name, k) => ({
        name,
        domid: k + 1,
        memoryMb: 512,
        vcpus: 1,
        state: '-b----',
        flags: { running: false, blocked: true, paused: false, shutdown: false, dying: false },
        cpuTimeS: 1,
      })),
    );
  return {
    forHost: (e) => ({ hostName: e.name, listDomains }) as unknown as XenHost,
    readFingerprint: () => Promise.resolve(''),
    close: () => Promise.resolve(),
  };
}

describe('reaper on Postgres', () => {
  const db = useTestDatabase();

  it('quarantines through a stop, destroys through the one decommission action, once', async () => {
    const ds = db.dataSource;
    const clock = new FakeClock();
    const host = await aHostRow(ds);
    const names = ['c0', 'c1', 'c2', 'c3'].map((n) => `${n}-${Math.random().toString(36).slice(2, 6)}`);
    const ids = await Promise.all(
      names.map((domainName) => insertInstance(ds, { hostId: host.id, domainName })),
    );
    // Everyone beat just now except the first, which has been silent past its deadline.
    await ds.query(
      `UPDATE "instances" SET "last_heartbeat_at" = $2, "heartbeat_deadline_at" = $2::timestamptz + interval '180 seconds'
        WHERE "id" = ANY($1::uuid[])`,
      [ids.slice(1), clock.now()],
    );
    await ds.query(
      `UPDATE "instances" SET "last_heartbeat_at" = $2, "heartbeat_deadline_at" = $3 WHERE "id" = $1`,
      [ids[0], new Date(clock.t - 10 * MIN), new Date(clock.t - 7 * MIN)],
    );
    const store = new PgReaperStore(ds, { cattleS: 180, petS: 180 });
    const instances = new InstanceService(new PgVmRequestUnitOfWork(ds), new OperationRepository(ds), clock, {
      operationDeadlineMs: 15 * MIN,
      heartbeat: heartbeatOptionsOf(loadConfig({})),
    });
    const reaper = new Reaper(
      {
        store,
        actions: new InstanceServiceReaperActions(instances, silentLogger),
        xen: xenWith(new Set(names.slice(1))),
        clock,
        log: silentLogger,
        audit: (e) => PgAuditLog.appendAlone(ds, e),
      },
      DEFAULT_REAPER_OPTIONS,
      { startedAt: new Date(clock.t - 60 * MIN) },
    );

    const first = await reaper.runCycle();
    expect(first).toMatchObject({ candidates: 1, acted: 1 });
    const ops = () =>
      ds.query<Array<{ id: string; kind: string; requested_by: string }>>(
        `SELECT "id", "kind", "requested_by" FROM "operations" WHERE "target_id" = $1 ORDER BY "created_at"`,
        [ids[0]],
      );
    expect(await ops()).toMatchObject([{ kind: 'instance.stop', requested_by: 'system:reaper' }]);
    // A cycle while the stop is in flight repeats nothing.
    await reaper.runCycle();
    expect(await ops()).toHaveLength(1);

    // The InstanceAction job finishes the stop (no worker runs here).
    await ds.query(`UPDATE "instances" SET "state" = 'stopped' WHERE "id" = $1`, [ids[0]]);
    await ds.query(
      `UPDATE "operations" SET "state" = 'succeeded', "finished_at" = now() WHERE "target_id" = $1`,
      [ids[0]],
    );
    const quarantined = await store.listCandidates(clock.now(), 100);
    expect(quarantined.map((c) => c.instanceId)).toEqual([ids[0]]);
    expect(quarantined[0]!.quarantinedAt).toBeInstanceOf(Date);

    clock.t += 16 * MIN; // past the quarantine; the others keep beating
    await ds.query(
      `UPDATE "instances" SET "last_heartbeat_at" = $2, "heartbeat_deadline_at" = $2::timestamptz + interval '180 seconds'
        WHERE "id" = ANY($1::uuid[])`,
      [ids.slice(1), clock.now()],
    );
    await reaper.runCycle();
    await reaper.runCycle();
    expect((await ops()).map((o) => o.kind)).toEqual(['instance.stop', 'instance.decommission']);
    const [row] = await ds.query<Array<{ state: string }>>(
      `SELECT "state" FROM "instances" WHERE "id" = $1`,
      [ids[0]],
    );
    expect(row!.state).toBe('decommissioning');
    const jobs = await ds.query<Array<{ job_name: string }>>(
      `SELECT "job_name" FROM "outbox" WHERE "payload"->>'operationId' = ANY($1::text[])`,
      [(await ops()).map((o) => o.id)],
    );
    expect(jobs.map((j) => j.job_name)).toEqual(['InstanceAction', 'InstanceAction']);
    const audit = await ds.query<Array<{ action: string }>>(
      `SELECT "action" FROM "audit_events" WHERE "object_id" = $1 AND "actor" = 'system:reaper' ORDER BY "seq"`,
      [ids[0]],
    );
    expect(audit.map((a) => a.action)).toEqual(
      expect.arrayContaining(['lifecycle.reap.act', 'instance.stop', 'instance.decommission']),
    );
  });

  it('restarted mid-cycle: every silent instance acted on exactly once, one act record each', async () => {
    const ds = db.dataSource;
    const clock = new FakeClock();
    const host = await aHostRow(ds);
    const tag = Math.random().toString(36).slice(2, 6);
    const names = Array.from({ length: 14 }, (_, k) => `r${k}-${tag}`);
    const ids = await Promise.all(
      names.map((domainName) => insertInstance(ds, { hostId: host.id, domainName })),
    );
    // Four silent (4/14 stays under the fleet and host shares), their domains gone from xl list.
    const silent = ids.slice(0, 4);
    const beatOthers = () =>
      ds.query(
        `UPDATE "instances" SET "last_heartbeat_at" = $2, "heartbeat_deadline_at" = $2::timestamptz + interval '180 seconds'
          WHERE "id" = ANY($1::uuid[])`,
        [ids.slice(4), clock.now()],
      );
    await beatOthers();
    await ds.query(
      `UPDATE "instances" SET "last_heartbeat_at" = $2, "heartbeat_deadline_at" = $3 WHERE "id" = ANY($1::uuid[])`,
      [silent, new Date(clock.t - 10 * MIN), new Date(clock.t - 7 * MIN)],
    );
    const xen = xenWith(new Set(names.slice(4)));
    const store = new PgReaperStore(ds, { cattleS: 180, petS: 180 });
    const real = new InstanceServiceReaperActions(
      new InstanceService(new PgVmRequestUnitOfWork(ds), new OperationRepository(ds), clock, {
        operationDeadlineMs: 15 * MIN,
        heartbeat: heartbeatOptionsOf(loadConfig({})),
      }),
      silentLogger,
    );
    const deps = {
      store,
      xen,
      clock,
      log: silentLogger,
      audit: (e: AuditEventInput) => PgAuditLog.appendAlone(ds, e),
    };
    const options = { ...DEFAULT_REAPER_OPTIONS, mode: 'direct' as const };

    /**
     * A reaper process that dies at its `at`-th decommission: after that action's transaction
     * committed (it never learns of it), or before it began (the decision made, nothing written).
     */
    const dying = (at: number, when: 'after-commit' | 'before-commit') => {
      let calls = 0;
      let died!: () => void;
      const dead = new Promise<void>((resolve) => (died = resolve));
      const actions: ReaperActions = {
        quarantine: (...a) => real.quarantine(...a),
        revive: (...a) => real.revive(...a),
        decommission: async (...a) => {
          if (++calls < at) return real.decommission(...a);
          if (when === 'after-commit') await real.decommission(...a);
          died();
          return new Promise<never>(() => undefined);
        },
      };
      return { actions, dead };
    };
    const cyclesUntil = async (reaper: Reaper, dead: Promise<void>): Promise<void> => {
      let over = false;
      void dead.then(() => (over = true));
      for (let k = 0; k < 60 && !over; k++) {
        clock.t += 10_000;
        await beatOthers();
        await Promise.race([reaper.runCycle(), dead]);
      }
      expect(over).toBe(true);
    };

    // The first leader decides all four, commits two, and dies right after the second commit.
    const a = dying(2, 'after-commit');
    const first = new Reaper({ ...deps, actions: a.actions }, options, {
      startedAt: new Date(clock.t - 60 * MIN),
    });
    void first.runCycle();
    await a.dead;

    // A new process: a fresh reaper with its own startup grace and only the durable state. It
    // sees two candidates, holds them through the grace, then dies deciding the first of them.
    const b = dying(1, 'before-commit');
    const second = new Reaper({ ...deps, actions: b.actions }, options);
    expect(await second.runCycle()).toMatchObject({ candidates: 2, acted: 0, held: 2 });
    await cyclesUntil(second, b.dead);

    // A third finishes the work.
    const third = new Reaper({ ...deps, actions: real }, options);
    for (let k = 0; k < 25; k++) {
      clock.t += 10_000;
      await beatOthers();
      await third.runCycle();
    }

    const ops = await ds.query<Array<{ id: string; target_id: string; kind: string; requested_by: string }>>(
      `SELECT "id", "target_id", "kind", "requested_by" FROM "operations" WHERE "target_id" = ANY($1::uuid[])`,
      [ids],
    );
    expect(ops.map((o) => o.target_id).sort()).toEqual([...silent].sort());
    expect(ops.every((o) => o.kind === 'instance.decommission' && o.requested_by === 'system:reaper')).toBe(
      true,
    );
    const acts = await ds.query<
      Array<{ object_id: string; after: { operationId: string; outcome: string } }>
    >(
      `SELECT "object_id", "after" FROM "audit_events" WHERE "action" = 'lifecycle.reap.act' AND "object_id" = ANY($1::text[])`,
      [ids],
    );
    expect(acts.map((a) => a.object_id).sort()).toEqual([...silent].sort());
    // Each act record names the operation it committed with.
    for (const a of acts) {
      expect(a.after.outcome).toBe('act:destroy');
      expect(a.after.operationId).toBe(ops.find((o) => o.target_id === a.object_id)!.id);
    }
    const jobs = await ds.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM "outbox" WHERE "payload"->>'operationId' = ANY($1::text[])`,
      [ops.map((o) => o.id)],
    );
    expect(jobs[0]!.n).toBe(4);
    const states = await ds.query<Array<{ state: string; n: number }>>(
      `SELECT "state", count(*)::int AS n FROM "instances" WHERE "id" = ANY($1::uuid[]) GROUP BY "state" ORDER BY "state"`,
      [ids],
    );
    expect(states).toEqual([
      { state: 'decommissioning', n: 4 },
      { state: 'running', n: 10 },
    ]);
  });

  it('counts the fleet and each host from the overdue index, and resets every deadline', async () => {
    const ds = db.dataSource;
    const now = new Date();
    const host = await aHostRow(ds);
    const ids = await Promise.all(
      [0, 1, 2].map((k) =>
        insertInstance(ds, {
          hostId: host.id,
          domainName: `f${k}-${Math.random().toString(36).slice(2, 6)}`,
        }),
      ),
    );
    await ds.query(`UPDATE "instances" SET "heartbeat_deadline_at" = $2 WHERE "id" = ANY($1::uuid[])`, [
      ids.slice(0, 2),
      new Date(now.getTime() - MIN),
    ]);
    const store = new PgReaperStore(ds, { cattleS: 180, petS: 180 });
    const [h] = await store.hosts([host.id], now);
    expect(h).toMatchObject({ liveCattle: 3, silentCattle: 2, status: 'online' });
    expect(await store.resetDeadlines(now)).toBeGreaterThanOrEqual(3);
    const [after] = await store.hosts([host.id], now);
    expect(after!.silentCattle).toBe(0);
  });
});
