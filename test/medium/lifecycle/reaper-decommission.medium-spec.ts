import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import {
  type Clock,
  DEFAULT_REAPER_OPTIONS,
  heartbeatOptionsOf,
  heartbeatTimeoutsOf,
  InstanceService,
  InstanceServiceReaperActions,
  type LeaderLease,
  loadConfig,
  type NormConfig,
  Reaper,
  silentLogger,
} from '@norm/core';
import {
  OperationRepository,
  PgAuditLog,
  PgLeaderLock,
  PgReaperStore,
  PgVmRequestUnitOfWork,
} from '@norm/inventory';
import { sshOptions, SshXenHostFactory } from '@norm/xen';
import { type SimulatedFleet, type SimulatedFleetHost, startSimulatedFleet } from '@norm/xen/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../../apps/api/src/api-app';
import { WorkerRuntime } from '../../../apps/worker/src/worker-runtime';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { aCatalogue, aSimHostRow, type Catalogue } from '../vm-requests/builders';

const MIN = 60_000;
const SECRET = 'medium-test-webhook-secret';

class FakeClock implements Clock {
  t = Date.now();
  now(): Date {
    return new Date(this.t);
  }
  sleep(): Promise<void> {
    return Promise.resolve();
  }
}

interface Json {
  [k: string]: unknown;
}

/** What the CMDB saw, and what was true on the host and in IPAM at that moment. */
interface Delivery {
  instanceId: string;
  validSignature: boolean;
  domainListed: boolean;
  ipHeld: boolean;
}

/**
 * One silent cattle instance, from the reaper's decision to every target clean, through the
 * real worker (WorkerRuntime in this process: outbox relay, BullMQ, the InstanceAction handler,
 * the deregistration retry loop) against a simulated host over SSH and the real API. The test
 * holds the reaper's leader lock itself and drives a Reaper with a fake clock, so timeouts and
 * the quarantine pass in milliseconds while every effect is the real one.
 */
describe('reaper → InstanceDecommission → every deregistration target, on a simulated host', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let fleet: SimulatedFleet;
  let sim: SimulatedFleetHost;
  let factory: SshXenHostFactory;
  let config: NormConfig;
  let app: NestFastifyApplication;
  let runtime: WorkerRuntime;
  let lease: LeaderLease | null;
  let admin: string;
  let cat: Catalogue;
  let receiver: Server;
  let answer = 200;
  let commandLog: string;
  const deliveries: Delivery[] = [];
  const clock = new FakeClock();
  let reaper: Reaper;

  const call = async (method: 'GET' | 'POST', url: string, payload?: Json) => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${admin}` },
      ...(payload ? { payload } : {}),
    });
    return { status: res.statusCode, body: res.json<unknown>() };
  };

  const instanceRow = async (id: string) =>
    (
      await db.dataSource.query<
        Array<{
          state: string;
          domain_name: string;
          disk_volume: string;
          ip: string;
          heartbeat_timeout_s: number;
        }>
      >(
        `SELECT "state", "domain_name", "disk_volume", host("ip") AS "ip", "heartbeat_timeout_s"
           FROM "instances" WHERE "id" = $1`,
        [id],
      )
    )[0]!;

  const allocation = async (instanceId: string) =>
    (
      await db.dataSource.query<Array<{ released_at: Date | null; mac: string }>>(
        `SELECT "released_at", "mac" FROM "ip_allocations" WHERE "instance_id" = $1`,
        [instanceId],
      )
    )[0]!;

  /** Requests a VM over HTTP and waits until the worker has it running on the simulated host. */
  const provision = async (name: string, heartbeatTimeout?: string): Promise<string> => {
    const created = await call('POST', '/v1/vm-requests', {
      name,
      vcpus: 1,
      memoryMb: 256,
      diskGb: 1,
      imageId: cat.image.id,
      networkId: cat.network.id,
      lifecycleClass: 'cattle',
      ...(heartbeatTimeout ? { heartbeatTimeout } : {}),
    });
    expect(created.status).toBe(201);
    const requestId = (created.body as { id: string }).id;
    return expectEventually(
      async () => {
        const [row] = await db.dataSource.query<Array<{ id: string; state: string }>>(
          `SELECT "id", "state" FROM "instances" WHERE "vm_request_id" = $1`,
          [requestId],
        );
        expect(row?.state).toBe('running');
        return row!.id;
      },
      { timeoutMs: 30_000 },
    );
  };

  /** The survivors keep beating, on the reaper's clock. */
  const beat = (ids: string[]) =>
    db.dataSource.query(
      `UPDATE "instances" SET "last_heartbeat_at" = $2, "heartbeat_deadline_at" = $2::timestamptz + interval '180 seconds'
        WHERE "id" = ANY($1::uuid[])`,
      [ids, clock.now()],
    );

  const reapActs = async (id: string) =>
    (
      await db.dataSource.query<Array<{ outcome: string }>>(
        `SELECT "after"->>'outcome' AS "outcome" FROM "audit_events"
          WHERE "action" = 'lifecycle.reap.act' AND "object_id" = $1 ORDER BY "seq"`,
        [id],
      )
    ).map((r) => r.outcome);

  /**
   * The silent instance's domain dies on the host, then the two-phase path runs: a stop (kept
   * disk and addresses), a quarantine on the fake clock, then the decommission.
   */
  const reapSilent = async (victim: string, survivors: string[]): Promise<void> => {
    const { domain_name } = await instanceRow(victim);
    expect((await sim.sim.exec(['xl', 'destroy', domain_name])).exitCode).toBe(0);
    clock.t = Math.max(clock.t, Date.now()) + 2 * MIN; // past its 60 s timeout, within the others' 180 s
    await beat(survivors);
    expect(await reaper.runCycle()).toMatchObject({ candidates: 1, acted: 1 });
    await expectEventually(async () => expect((await instanceRow(victim)).state).toBe('stopped'), {
      timeoutMs: 20_000,
    });
    // Quarantine keeps the disk and the address.
    expect(sim.sim.state.lvs.some((lv) => lv.name.startsWith(domain_name))).toBe(true);
    expect((await allocation(victim)).released_at).toBeNull();
    clock.t += 16 * MIN;
    await beat(survivors);
    expect(await reaper.runCycle()).toMatchObject({ candidates: 1, acted: 1 });
  };

  beforeAll(async () => {
    fleet = await startSimulatedFleet({ count: 1, mode: 'inprocess', namePrefix: 'reap-' });
    sim = fleet.hosts[0]!;
    factory = new SshXenHostFactory(sshOptions({ privateKey: sim.privateKey }), { configDir: sim.configDir });
    await aSimHostRow(db.dataSource, sim);
    cat = await aCatalogue(db.dataSource);

    // A CMDB that checks the documented signature and notes what was true when it was told.
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const sig = String(req.headers['x-norm-signature'] ?? '');
        const [, t, v1] = /^t=(\d+),v1=([0-9a-f]+)$/.exec(sig) ?? [];
        const valid = !!t && createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex') === v1;
        const event = JSON.parse(body) as { instanceId: string; domainName: string };
        void allocation(event.instanceId).then((a) => {
          deliveries.push({
            instanceId: event.instanceId,
            validSignature: valid,
            domainListed: sim.sim.state.findByName(event.domainName) !== undefined,
            ipHeld: a.released_at === null,
          });
          res.writeHead(valid ? answer : 401).end();
        });
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    const stateDir = mkdtempSync(join(tmpdir(), 'norm-reap-'));
    commandLog = join(stateDir, 'command-events.jsonl');
    // The command target: the event arrives as JSON on STDIN, appended here one per line.
    const script = join(stateDir, 'deregister.sh');
    writeFileSync(script, '#!/bin/sh\ncat >> "$1"\necho >> "$1"\n', { mode: 0o755 });
    config = loadConfig({
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_STATE_DIR: stateDir,
      NORM_LOG_LEVEL: 'silent',
      NORM_OUTBOX_POLL_INTERVAL: '100ms',
      NORM_DEREGISTRATION_INTERVAL: '200ms',
      NORM_DEREGISTRATION_TARGETS: `webhook:cmdb=http://127.0.0.1:${port}/hooks/norm;command:script=${script} ${commandLog}`,
      NORM_DEREGISTRATION_WEBHOOK_SECRET: SECRET,
      // Longer than this file runs: a token that stops working did so by revocation, not by age.
      NORM_TOKEN_CACHE_TTL: '10m',
    });
    app = await createApiApp({ config });
    await app.init();
    admin = await expectEventually(() => readFileSync(join(stateDir, 'admin-token'), 'utf8').trim());

    // This test leads the reaper; the worker's own reaper loop stays a follower.
    lease = await new PgLeaderLock({
      databaseUrl: db.url,
      name: 'reaper',
      checkIntervalMs: 60_000,
      logger: silentLogger,
    }).tryAcquire();
    expect(lease).not.toBeNull();
    runtime = new WorkerRuntime(config, db.dataSource, silentLogger, factory);
    runtime.start();

    const instances = new InstanceService(
      new PgVmRequestUnitOfWork(db.dataSource),
      new OperationRepository(db.dataSource),
      clock,
      { operationDeadlineMs: 15 * MIN, heartbeat: heartbeatOptionsOf(config) },
    );
    reaper = new Reaper(
      {
        store: new PgReaperStore(db.dataSource, heartbeatTimeoutsOf(config)),
        actions: new InstanceServiceReaperActions(instances, silentLogger),
        xen: factory,
        clock,
        log: silentLogger,
        audit: (e) => PgAuditLog.appendAlone(db.dataSource, e),
      },
      { ...DEFAULT_REAPER_OPTIONS, heartbeatTimeoutMs: config.heartbeatTimeoutMs },
      { startedAt: new Date(clock.t - 60 * MIN) },
    );
  }, 60_000);

  afterAll(async () => {
    await runtime?.stop();
    await lease?.release();
    await app?.close();
    await factory?.close();
    await fleet?.stop();
    await new Promise((r) => receiver?.close(r));
  });

  it('one instance silent: stopped, then decommissioned once; domain, disk, targets and address all clean', async () => {
    const victim = await provision('reap-victim', '60s');
    const survivor = await provision('reap-survivor');
    // The request's own timeout reached the instance.
    expect(await instanceRow(victim)).toMatchObject({ heartbeat_timeout_s: 60 });
    expect((await instanceRow(survivor)).heartbeat_timeout_s).toBeNull();
    const { domain_name, disk_volume } = await instanceRow(victim);
    // A token the API has verified and cached, as every beating guest's is.
    const issued = await call('POST', `/v1/instances/${victim}/token`);
    expect(issued.status).toBe(201);
    const guestToken = (issued.body as { token: string }).token;
    const heartbeat = async () =>
      (
        await app.inject({
          method: 'POST',
          url: `/v1/instances/${victim}/heartbeat`,
          headers: { authorization: `Bearer ${guestToken}` },
        })
      ).statusCode;
    expect(await heartbeat()).toBe(202);

    await reapSilent(victim, [survivor]);
    await expectEventually(async () => expect((await instanceRow(victim)).state).toBe('decommissioned'), {
      timeoutMs: 20_000,
    });
    // The worker revoked it and told every replica's cache at once, not 10 minutes later.
    expect(await heartbeat()).toBe(401);
    expect(sim.sim.state.findByName(domain_name)).toBeUndefined();
    expect(sim.sim.state.lvs.some((lv) => `${lv.vg}/${lv.name}` === disk_volume)).toBe(false);
    expect((await allocation(victim)).released_at).not.toBeNull();
    // Told once, signed, after the domain was gone and while the address was still its own.
    expect(deliveries.filter((d) => d.instanceId === victim)).toEqual([
      { instanceId: victim, validSignature: true, domainListed: false, ipHeld: true },
    ]);
    const commandEvents = readFileSync(commandLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { instanceId: string; event: string });
    expect(commandEvents.filter((e) => e.instanceId === victim)).toEqual([
      expect.objectContaining({ event: 'instance.decommissioned', instanceId: victim }),
    ]);
    const rows = await call('GET', `/v1/deregistrations?instance=${victim}&status=done`);
    expect((rows.body as Array<{ target: string }>).map((r) => r.target).sort()).toEqual([
      'command:script',
      'webhook:cmdb',
    ]);
    // One decision per phase, one operation each, and the survivor untouched.
    expect(await reapActs(victim)).toEqual(['act:quarantine', 'act:destroy']);
    const ops = await db.dataSource.query<Array<{ kind: string; state: string }>>(
      `SELECT "kind", "state" FROM "operations" WHERE "target_id" = $1 ORDER BY "created_at"`,
      [victim],
    );
    expect(ops).toEqual([
      { kind: 'instance.stop', state: 'succeeded' },
      { kind: 'instance.decommission', state: 'succeeded' },
    ]);
    expect(await instanceRow(survivor)).toMatchObject({ state: 'running' });
    expect(sim.sim.state.findByName((await instanceRow(survivor)).domain_name)).toBeDefined();
    // Further cycles find nothing left to do.
    await beat([survivor]);
    expect(await reaper.runCycle()).toMatchObject({ candidates: 0, acted: 0 });
  }, 90_000);

  it('a target that is down leaves the instance decommissioning with that target named; its retry finishes', async () => {
    const victim = await provision('reap-victim-2', '60s');
    const survivors = (
      await db.dataSource.query<Array<{ id: string }>>(
        `SELECT "id" FROM "instances" WHERE "state" = 'running' AND "id" <> $1`,
        [victim],
      )
    ).map((r) => r.id);
    answer = 503;
    await reapSilent(victim, survivors);
    await expectEventually(
      async () => {
        const failed = await call('GET', '/v1/deregistrations?status=failed');
        expect(failed.body).toEqual([
          expect.objectContaining({ instanceId: victim, target: 'webhook:cmdb', status: 'failed' }),
        ]);
        expect((failed.body as Array<{ lastError: string }>)[0]!.lastError).toContain('503');
      },
      { timeoutMs: 20_000 },
    );
    // The job ends there: the domain is confirmed gone, so the address is free; the instance is not done.
    await expectEventually(async () => {
      const [op] = await db.dataSource.query<Array<{ state: string }>>(
        `SELECT "state" FROM "operations" WHERE "target_id" = $1 AND "kind" = 'instance.decommission'`,
        [victim],
      );
      expect(op?.state).toBe('succeeded');
    });
    expect(await call('GET', `/v1/instances/${victim}`)).toMatchObject({
      status: 200,
      body: { state: 'decommissioning', failingTargets: ['webhook:cmdb'] },
    });
    expect((await allocation(victim)).released_at).not.toBeNull();
    const done = await call('GET', `/v1/deregistrations?instance=${victim}&status=done`);
    expect((done.body as Array<{ target: string }>).map((r) => r.target)).toEqual(['command:script']);

    // The CMDB comes back and the backoff runs out: the worker's retry loop finishes the work.
    answer = 200;
    await db.dataSource.query(
      `UPDATE "deregistrations" SET "next_attempt_at" = now() WHERE "instance_id" = $1 AND "status" = 'failed'`,
      [victim],
    );
    await expectEventually(async () => expect((await instanceRow(victim)).state).toBe('decommissioned'), {
      timeoutMs: 20_000,
    });
    expect(deliveries.filter((d) => d.instanceId === victim).map((d) => d.domainListed)).toEqual([
      false,
      false,
    ]);
    expect((await call('GET', '/v1/deregistrations?status=failed')).body).toEqual([]);
    expect((await call('GET', `/v1/instances/${victim}`)).body).toMatchObject({
      state: 'decommissioned',
      failingTargets: [],
    });
    // The command target, done the first time, was not called again.
    expect(readFileSync(commandLog, 'utf8').split(victim).length - 1).toBe(1);
    expect(await reapActs(victim)).toEqual(['act:quarantine', 'act:destroy']);
  }, 90_000);
});
