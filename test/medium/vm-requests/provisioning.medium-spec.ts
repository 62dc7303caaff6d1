import {
  handleVmProvision,
  HostLimiter,
  type JobContext,
  silentLogger,
  sweepStuckWork,
  systemClock,
} from '@norm/core';
import { HostRepository } from '@norm/inventory';
import { RedisRevocationNotifier, revocationEpochKey } from '@norm/platform';
import { sshOptions, SshXenHostFactory } from '@norm/xen';
import { type SimulatedFleet, type SimulatedFleetHost, startSimulatedFleet } from '@norm/xen/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../../harness/env';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { aCatalogue, aPrincipal, aRequest, aSimHostRow, type Catalogue } from './builders';
import { provisioningServices, TEST_BOOTSTRAP, tokenAccepted } from './provisioning-services';

const db = useTestDatabase();
const prefix = useRedisPrefix();
const redis = new Redis(REDIS_URL);
const revocations = new RedisRevocationNotifier(redis, prefix);
const epoch = async () => Number((await redis.get(revocationEpochKey(prefix))) ?? 0);

let fleet: SimulatedFleet;
let factory: SshXenHostFactory;
let cat: Catalogue;
let sim: SimulatedFleetHost;
let hostId: string;

const ctx = (attempt = 1): JobContext => ({ jobId: 'test', attempt, signal: new AbortController().signal });

function services() {
  return provisioningServices({ dataSource: db.dataSource, xen: factory, revocations, blockHostAfter: 3 });
}

async function live(sql: string, params: unknown[]): Promise<number> {
  const rows: Array<{ n: number }> = await db.dataSource.query(
    `SELECT count(*)::int AS n FROM ${sql}`,
    params,
  );
  return rows[0]?.n ?? 0;
}

const volumesOf = (name: string) => sim.sim.state.lvs.filter((lv) => lv.name.startsWith(name));

beforeAll(async () => {
  fleet = await startSimulatedFleet({ count: 1, mode: 'inprocess' });
  sim = fleet.hosts[0]!;
  factory = new SshXenHostFactory(sshOptions({ privateKey: sim.privateKey }), { configDir: sim.configDir });
  const host = await aSimHostRow(db.dataSource, sim);
  hostId = host.id;
  cat = await aCatalogue(db.dataSource);
}, 30_000);

afterAll(async () => {
  await factory?.close();
  await fleet?.stop();
  await redis.quit();
});

beforeEach(async () => {
  sim.sim.faults.reset();
  await db.dataSource.query(
    `UPDATE "hosts" SET "placement_blocked_reason" = NULL, "consecutive_provision_failures" = 0`,
  );
});

describe('VmProvision against a simulated host', () => {
  it('reconciles to one running domain; running the job again changes nothing', async () => {
    const s = services();
    const me = aPrincipal();
    const { request } = await s.requests.create(me, aRequest(cat));
    await s.provision({ requestId: request.id }, ctx());
    const after = await s.requests.get(me, request.id);
    expect(after.state).toBe('running');
    expect(after.history.map((h) => h.to)).toEqual([
      'pending_approval',
      'approved',
      'provisioning',
      'running',
    ]);
    const domain = sim.sim.state.findByName(request.name);
    expect(domain).toBeDefined();
    const { items } = await s.instances.list(me, { limit: 10 });
    expect(items[0]).toMatchObject({
      state: 'running',
      hostId,
      domainName: request.name,
      domid: domain!.domid,
    });
    expect(items[0]!.ip).toMatch(/^10\./);
    expect(items[0]!.mac).toMatch(/^00:16:3e:/);
    expect(await live(`"api_tokens" WHERE "instance_id" = $1 AND "kind" = 'instance'`, [items[0]!.id])).toBe(
      1,
    );

    const creates = sim.sim.commands(['xl', 'create']).length;
    await s.provision({ requestId: request.id }, ctx());
    expect(sim.sim.commands(['xl', 'create']).length).toBe(creates);
    expect(sim.sim.state.domainList().filter((d) => d.name === request.name)).toHaveLength(1);
  });

  it('resumes a run whose worker died at each step: one volume, one domain, one address', async () => {
    for (const killAt of [
      'allocate-ip',
      'create-disk',
      'create-domain',
      'confirm',
      'mark-running',
    ] as const) {
      const s = services();
      const me = aPrincipal();
      const { request } = await s.requests.create(me, aRequest(cat));
      let died!: () => void;
      const dead = new Promise<void>((resolve) => (died = resolve));
      // A step that never returns is what a kill -9 looks like from the database and the host.
      const dying = handleVmProvision({
        uow: s.uow,
        requests: s.requests,
        xen: factory,
        limiter: new HostLimiter(2, 16),
        clock: systemClock,
        log: silentLogger,
        options: { maxAttempts: 3, blockHostAfter: 3 },
        bootstrap: TEST_BOOTSTRAP,
        revocations,
        beforeStep: (step) => {
          if (step !== killAt) return Promise.resolve();
          died();
          return new Promise<void>(() => undefined);
        },
      });
      void dying({ requestId: request.id }, ctx());
      await dead;
      await s.provision({ requestId: request.id }, ctx(2));
      expect((await s.requests.get(me, request.id)).state, killAt).toBe('running');
      expect(
        sim.sim.state.domainList().filter((d) => d.name === request.name),
        killAt,
      ).toHaveLength(1);
      expect(volumesOf(request.name), killAt).toHaveLength(1);
      const instance = (await s.instances.list(me, { limit: 1 })).items[0]!;
      expect(await live(`"ip_allocations" WHERE "instance_id" = $1`, [instance.id]), killAt).toBe(1);
    }
  });

  describe('bootstrap data for kernel-boot guests', () => {
    let kernelCat: Catalogue;
    beforeAll(async () => {
      kernelCat = await aCatalogue(db.dataSource, {
        method: 'kernel',
        kernel: '/var/lib/norm/images/tiny/vmlinuz',
        ramdisk: '/var/lib/norm/images/tiny/initrd.gz',
        kernelArgs: 'console=hvc0 rdinit=/init quiet',
      });
    });

    const configOf = (name: string) => {
      const path = `${sim.configDir}/${name}.cfg`;
      const node = sim.sim.fs.get(path);
      return node
        ? { text: sim.sim.fs.readFile(path).toString('utf8'), uid: node.uid, perm: node.mode & 0o777 }
        : undefined;
    };
    const wordsOf = (cfg: string): Record<string, string> => {
      const extra = /^extra = "(.*)"$/m.exec(cfg)?.[1] ?? '';
      return Object.fromEntries(extra.split(' ').map((w) => [w.split('=')[0]!, w.slice(w.indexOf('=') + 1)]));
    };

    it('renders URL, token, interval, IPAM address and gateway into extra=, in a root-only config', async () => {
      const s = services();
      const me = aPrincipal();
      const { request } = await s.requests.create(me, aRequest(kernelCat));
      await s.provision({ requestId: request.id }, ctx());
      const instance = (await s.instances.list(me, { limit: 1 })).items[0]!;
      expect(instance.state).toBe('running');
      const cfg = configOf(request.name)!;
      expect({ uid: cfg.uid, perm: cfg.perm }).toEqual({ uid: 0, perm: 0o600 });
      expect(sim.sim.fs.get(`${sim.configDir}/.${request.name}.cfg.staged`)).toBeUndefined();
      const words = wordsOf(cfg.text);
      expect(words).toMatchObject({
        console: 'hvc0',
        'norm.heartbeat_url': `http://10.0.2.100:8080/v1/instances/${instance.id}/heartbeat`,
        'norm.interval': '5',
        'norm.ip': `${instance.ip}/24`,
        'norm.gw': kernelCat.network.gateway,
      });
      expect(await tokenAccepted(db.dataSource, instance.id, words['norm.token']!)).toBe(true);
      // Stored with the instance-token scrypt cost (a 256-bit random secret needs no more),
      // not the API tokens' 2^14 that made 200 provisions spend 7 s of CPU hashing.
      const [stored] = await db.dataSource.query<Array<{ secret_hash: string }>>(
        `SELECT "secret_hash" FROM "api_tokens" WHERE "instance_id" = $1 AND "revoked_at" IS NULL`,
        [instance.id],
      );
      expect(stored!.secret_hash).toMatch(/^scrypt\$1024\$8\$1\$/);
      // The clear token is nowhere in Postgres: not in the audit, not on the request.
      const leaks = await live(`"audit_events" WHERE "after"::text LIKE $1 OR "before"::text LIKE $1`, [
        `%${words['norm.token']}%`,
      ]);
      expect(leaks).toBe(0);
      expect(JSON.stringify(await s.requests.get(me, request.id))).not.toContain(words['norm.token']);
    });

    it('a create retried after a transient failure hands the guest the token Norm accepts, and only it', async () => {
      const s = services();
      const me = aPrincipal();
      const { request } = await s.requests.create(me, aRequest(kernelCat));
      // The first run stores its token and then loses the host during xl create.
      sim.sim.faults.dropNextCommand((argv) => argv.includes('create'));
      await s.provision({ requestId: request.id }, ctx(1)).catch(() => undefined);
      await s.provision({ requestId: request.id }, ctx(2));
      const instance = (await s.instances.list(me, { limit: 1 })).items[0]!;
      expect(instance.state).toBe('running');
      const token = wordsOf(configOf(request.name)!.text)['norm.token']!;
      expect(await tokenAccepted(db.dataSource, instance.id, token)).toBe(true);
      expect(
        await live(`"api_tokens" WHERE "instance_id" = $1 AND "revoked_at" IS NULL`, [instance.id]),
      ).toBe(1);
    });

    it('a run resumed after xl create keeps the token the guest booted with', async () => {
      const s = services();
      const me = aPrincipal();
      const { request } = await s.requests.create(me, aRequest(kernelCat));
      let died!: () => void;
      const dead = new Promise<void>((resolve) => (died = resolve));
      const dying = handleVmProvision({
        uow: s.uow,
        requests: s.requests,
        xen: factory,
        limiter: new HostLimiter(2, 16),
        clock: systemClock,
        log: silentLogger,
        options: { maxAttempts: 3, blockHostAfter: 3 },
        bootstrap: TEST_BOOTSTRAP,
        revocations,
        beforeStep: (step) => {
          if (step !== 'confirm') return Promise.resolve();
          died();
          return new Promise<void>(() => undefined);
        },
      });
      void dying({ requestId: request.id }, ctx());
      await dead;
      const booted = wordsOf(configOf(request.name)!.text)['norm.token']!;
      await s.provision({ requestId: request.id }, ctx(2));
      const instance = (await s.instances.list(me, { limit: 1 })).items[0]!;
      expect(instance.state).toBe('running');
      expect(await tokenAccepted(db.dataSource, instance.id, booted)).toBe(true);
    });
  });

  it('a failing xl create compensates: no volume, no domain, address released, error visible', async () => {
    const s = services();
    const me = aPrincipal();
    const { request } = await s.requests.create(me, aRequest(cat));
    sim.sim.faults.failNext(1, { exitCode: 3, stderr: 'libxl: error: simulated create failure\n' }, (argv) =>
      argv.includes('create'),
    );
    await s.provision({ requestId: request.id }, ctx());
    const after = await s.requests.get(me, request.id);
    expect(after.state).toBe('failed');
    expect(after.error).toMatchObject({ exitCode: 3 });
    expect(JSON.stringify(after.error)).toContain('simulated create failure');
    expect(sim.sim.state.findByName(request.name)).toBeUndefined();
    expect(volumesOf(request.name)).toHaveLength(0);
    const instance = (await s.instances.list(me, { limit: 1 })).items[0]!;
    expect(instance.state).toBe('failed');
    expect(
      await live(`"ip_allocations" WHERE "instance_id" = $1 AND "released_at" IS NULL`, [instance.id]),
    ).toBe(0);
    expect(
      await live(`"audit_events" WHERE "object_id" = $1 AND "action" = 'vm-request.fail'`, [request.id]),
    ).toBe(1);
  });

  it('blocks a host from placement after three failed provisions in a row', async () => {
    const s = services();
    for (let i = 0; i < 3; i++) {
      const { request } = await s.requests.create(aPrincipal(), aRequest(cat));
      sim.sim.faults.failNext(1, { exitCode: 1, stderr: 'boom\n' }, (argv) => argv.includes('create'));
      await s.provision({ requestId: request.id }, ctx());
    }
    const rows: Array<{ r: string | null }> = await db.dataSource.query(
      `SELECT "placement_blocked_reason" AS r FROM "hosts" WHERE "id" = $1`,
      [hostId],
    );
    expect(rows[0]?.r).toMatch(/3 times in a row/);
    // Approved, then its job finds no host to place it on: failed, saying why, nothing built.
    const blocked = aPrincipal();
    const { request } = await s.requests.create(blocked, aRequest(cat));
    expect(request.state).toBe('approved');
    const creates = sim.sim.commands(['xl', 'create']).length;
    await s.provision({ requestId: request.id }, ctx());
    const refused = await s.requests.get(blocked, request.id);
    expect(refused).toMatchObject({ state: 'failed', hostId: null, error: { code: 'PlacementImpossible' } });
    expect(JSON.stringify(refused.error)).toContain('placement_blocked');
    expect(sim.sim.commands(['xl', 'create']).length).toBe(creates);
    expect(await live(`"instances" WHERE "vm_request_id" = $1`, [request.id])).toBe(0);

    // The operator's clear (PATCH placementBlockedReason: null) starts the count again, so one
    // more failure does not put the host straight back out of placement.
    await new HostRepository(db.dataSource.manager).update(hostId, { placementBlockedReason: null });
    const [cleared] = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT "consecutive_provision_failures" AS n FROM "hosts" WHERE "id" = $1`,
      [hostId],
    );
    expect(cleared?.n).toBe(0);
    const again = await s.requests.create(aPrincipal(), aRequest(cat));
    sim.sim.faults.failNext(1, { exitCode: 1, stderr: 'boom\n' }, (argv) => argv.includes('create'));
    await s.provision({ requestId: again.request.id }, ctx());
    const after: Array<{ r: string | null; n: number }> = await db.dataSource.query(
      `SELECT "placement_blocked_reason" AS r, "consecutive_provision_failures" AS n FROM "hosts" WHERE "id" = $1`,
      [hostId],
    );
    expect(after[0]).toEqual({ r: null, n: 1 });

    // A provision that succeeds ends the run of failures: the count is back to zero.
    const fine = await s.requests.create(aPrincipal(), aRequest(cat));
    await s.provision({ requestId: fine.request.id }, ctx());
    expect((await s.requests.get(aPrincipal(['admin']), fine.request.id)).state).toBe('running');
    const [reset] = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT "consecutive_provision_failures" AS n FROM "hosts" WHERE "id" = $1`,
      [hostId],
    );
    expect(reset?.n).toBe(0);
  });

  it('a transient failure is retried by the queue, then succeeds', async () => {
    const s = services();
    const me = aPrincipal();
    const { request } = await s.requests.create(me, aRequest(cat));
    sim.sim.faults.dropNextCommand((argv) => argv.includes('create'));
    const first = await s.provision({ requestId: request.id }, ctx(1)).then(
      () => 'ok',
      (e: { code?: string }) => e.code,
    );
    await s.provision({ requestId: request.id }, ctx(2));
    expect((await s.requests.get(me, request.id)).state).toBe('running');
    expect(sim.sim.state.domainList().filter((d) => d.name === request.name)).toHaveLength(1);
    expect(['ok', 'HostUnreachable', 'CommandTimeout']).toContain(first);
  });

  it('stop, start and decommission through operations; decommission frees disk and address, revokes its tokens', async () => {
    const s = services();
    const me = aPrincipal();
    const { request } = await s.requests.create(me, aRequest(cat));
    await s.provision({ requestId: request.id }, ctx());
    const instance = (await s.instances.list(me, { limit: 1 })).items[0]!;

    const stop = await s.instances.act(me, instance.id, 'stop');
    expect(stop.state).toBe('pending');
    await expect(s.instances.act(me, instance.id, 'reboot')).rejects.toMatchObject({
      code: 'InvalidTransition',
    });
    await s.action({ operationId: stop.id }, ctx());
    expect((await s.instances.operation(me, stop.id)).state).toBe('succeeded');
    expect((await s.instances.get(me, instance.id)).state).toBe('stopped');

    const start = await s.instances.act(me, instance.id, 'start');
    await s.action({ operationId: start.id }, ctx());
    expect((await s.instances.get(me, instance.id)).state).toBe('running');
    expect(sim.sim.state.findByName(instance.domainName)).toBeDefined();

    // The guest's token from provisioning, and one more handed out over the API.
    expect(await live(`"api_tokens" WHERE "instance_id" = $1 AND "revoked_at" IS NULL`, [instance.id])).toBe(
      1,
    );
    await db.dataSource.query(
      `INSERT INTO "api_tokens" ("kind", "instance_id", "name", "prefix", "secret_hash", "created_by")
       VALUES ('instance', $1, 'second', $2, 'x', 'test')`,
      [instance.id, `t${Date.now().toString(16)}`],
    );
    const before = await epoch();
    const dec = await s.instances.act(me, instance.id, 'decommission');
    await s.action({ operationId: dec.id }, ctx());
    expect(await live(`"api_tokens" WHERE "instance_id" = $1 AND "revoked_at" IS NULL`, [instance.id])).toBe(
      0,
    );
    expect(await epoch()).toBeGreaterThan(before);
    const [revokeAudit] = await db.dataSource.query<Array<{ after: { tokensRevoked: number } }>>(
      `SELECT "after" FROM "audit_events" WHERE "action" = 'instance.token-revoke' AND "object_id" = $1`,
      [instance.id],
    );
    expect(revokeAudit?.after.tokensRevoked).toBe(2);
    expect((await s.instances.operation(me, dec.id)).state).toBe('succeeded');
    expect((await s.instances.get(me, instance.id)).state).toBe('decommissioned');
    expect(sim.sim.state.findByName(instance.domainName)).toBeUndefined();
    expect(volumesOf(instance.domainName)).toHaveLength(0);
    expect(
      await live(`"ip_allocations" WHERE "instance_id" = $1 AND "released_at" IS NULL`, [instance.id]),
    ).toBe(0);
  });

  describe('stuck work', () => {
    const sweepOptions = { resumeAfterMs: 60_000, giveUpAfterMs: 600_000, intervalMs: 1_000, batch: 50 };
    const age = (id: string, ms: number) =>
      db.dataSource.query(
        `UPDATE "vm_requests" SET "updated_at" = now() - ($2 || ' milliseconds')::interval WHERE "id" = $1`,
        [id, String(ms)],
      );

    it('resumes a request whose job was lost, under a new deterministic job id', async () => {
      const s = services();
      const me = aPrincipal();
      const { request } = await s.requests.create(me, aRequest(cat));
      await age(request.id, 120_000);
      const deps = { uow: s.uow, requests: s.requests, clock: systemClock, log: silentLogger };
      expect(await sweepStuckWork(deps, sweepOptions)).toMatchObject({ resumed: 1 });
      // A second sweeper in the same state enqueues nothing new.
      await sweepStuckWork(deps, sweepOptions);
      const jobs: Array<{ job_id: string }> = await db.dataSource.query(
        `SELECT "job_id" FROM "outbox" WHERE "payload"->>'requestId' = $1 ORDER BY "id"`,
        [request.id],
      );
      expect(jobs.map((j) => j.job_id)).toEqual([
        `VmProvision.${request.id}`,
        `VmProvision.${request.id}.v${request.version}`,
      ]);
      await s.provision({ requestId: request.id }, ctx());
      expect((await s.requests.get(me, request.id)).state).toBe('running');
    });

    it('gives up on a provision stalled too long: compensates, fails, frees everything', async () => {
      const s = services();
      const me = aPrincipal();
      const { request } = await s.requests.create(me, aRequest(cat));
      let died!: () => void;
      const dead = new Promise<void>((resolve) => (died = resolve));
      void handleVmProvision({
        uow: s.uow,
        requests: s.requests,
        xen: factory,
        limiter: new HostLimiter(2, 16),
        clock: systemClock,
        log: silentLogger,
        options: { maxAttempts: 3, blockHostAfter: 3 },
        bootstrap: TEST_BOOTSTRAP,
        revocations,
        beforeStep: (step) => {
          if (step !== 'confirm') return Promise.resolve();
          died();
          return new Promise<void>(() => undefined);
        },
      })({ requestId: request.id }, ctx());
      await dead;
      expect(sim.sim.state.findByName(request.name)).toBeDefined();
      await age(request.id, 3_600_000);
      const deps = { uow: s.uow, requests: s.requests, clock: systemClock, log: silentLogger };
      expect(await sweepStuckWork(deps, sweepOptions)).toMatchObject({ failed: 1 });
      await s.provision({ requestId: request.id }, ctx());
      const after = await s.requests.get(me, request.id);
      expect(after.state).toBe('failed');
      expect(after.error).toMatchObject({ code: 'DeadlineExceeded' });
      expect(sim.sim.state.findByName(request.name)).toBeUndefined();
      expect(volumesOf(request.name)).toHaveLength(0);
      const instance = (await s.instances.list(me, { limit: 1 })).items[0]!;
      expect(
        await live(`"ip_allocations" WHERE "instance_id" = $1 AND "released_at" IS NULL`, [instance.id]),
      ).toBe(0);
    });

    it('fails an operation past its deadline and puts a stopping instance back to running', async () => {
      const s = services();
      const me = aPrincipal();
      const { request } = await s.requests.create(me, aRequest(cat));
      await s.provision({ requestId: request.id }, ctx());
      const instance = (await s.instances.list(me, { limit: 1 })).items[0]!;
      const op = await s.instances.act(me, instance.id, 'stop');
      await db.dataSource.query(
        `UPDATE "operations" SET "deadline_at" = now() - interval '1 minute' WHERE "id" = $1`,
        [op.id],
      );
      const deps = { uow: s.uow, requests: s.requests, clock: systemClock, log: silentLogger };
      expect(await sweepStuckWork(deps, sweepOptions)).toMatchObject({ operationsFailed: 1 });
      expect((await s.instances.operation(me, op.id)).error).toMatchObject({ code: 'DeadlineExceeded' });
      expect((await s.instances.get(me, instance.id)).state).toBe('running');
      // The redelivered job finds the operation finished and does nothing.
      await s.action({ operationId: op.id }, ctx());
      expect(sim.sim.state.findByName(instance.domainName)).toBeDefined();
    });
  });
});
