import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig, silentLogger, syncHostsOnce, systemClock, VmRequestService } from '@norm/core';
import { HostRepository, PgVmRequestUnitOfWork } from '@norm/inventory';
import { sshOptions, SshXenHostFactory } from '@norm/xen';
import { type SimulatedFleet, type SimulatedFleetMode, startSimulatedFleet } from '@norm/xen/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../../apps/api/src/api-app';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { aCatalogue, type Catalogue } from '../vm-requests/builders';

interface Json {
  [k: string]: unknown;
}

/**
 * Placement through the path production takes: concurrent `POST /v1/vm-requests` that the
 * automatic steps approve at once, then each placed concurrently, as the provision jobs'
 * first step does (VmRequestService.place, each in its own transaction), against two
 * simulated hosts registered and synced over SSH. Each requester is a different principal,
 * since one owner's requests already queue on that owner's quota lock. What must hold is the
 * outcome: the placement lock orders the concurrent placements.
 */
const MODES: SimulatedFleetMode[] = ['inprocess', 'openssh'];

describe.each(MODES)('placement of requests against simulated hosts over %s', (mode) => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let fleet: SimulatedFleet;
  let factory: SshXenHostFactory;
  let app: NestFastifyApplication;
  let admin: string;
  let cat: Catalogue;
  const requesters: string[] = [];
  const hostIds = new Map<string, string>();

  const call = async (token: string, method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(payload === undefined ? {} : { payload: payload as Json }),
    });
    return { status: res.statusCode, body: res.json<Json>() };
  };

  beforeAll(async () => {
    fleet = await startSimulatedFleet({ count: 2, mode, namePrefix: `${mode}-place-` });
    factory = new SshXenHostFactory(sshOptions({ privateKey: fleet.clientKey.privateKey }), {
      configDir: '/var/lib/norm/domains',
    });
    const stateDir = mkdtempSync(join(tmpdir(), 'norm-placement-'));
    const config = loadConfig({
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_STATE_DIR: stateDir,
      NORM_LOG_LEVEL: 'silent',
      NORM_ANTI_AFFINITY: 'hard',
    });
    app = await createApiApp({ config, xen: factory });
    await app.init();
    admin = await expectEventually(() => readFileSync(join(stateDir, 'admin-token'), 'utf8').trim());
    for (const h of fleet.hosts) {
      const res = await call(admin, 'POST', '/v1/hosts', {
        name: h.name,
        address: h.address,
        port: h.port,
        sshUser: h.user,
        sudo: false,
        hostKeyFingerprint: h.fingerprint,
      });
      expect(res.status).toBe(201);
      hostIds.set(String(res.body.id), h.name);
    }
    // The capacity placement weighs is what the sync loop read over SSH.
    const pass = await syncHostsOnce(
      {
        hosts: new HostRepository(db.dataSource.manager),
        xen: factory,
        clock: systemClock,
        log: silentLogger,
      },
      { concurrency: 4, unreachableAfter: 3 },
    );
    expect(pass.succeeded).toBe(2);
    for (let i = 0; i < 6; i++) {
      const p = await call(admin, 'POST', '/v1/principals', {
        kind: 'person',
        name: `${mode}-req-${i}`,
        roles: ['requester'],
      });
      const t = await call(admin, 'POST', `/v1/principals/${String(p.body.id)}/tokens`, { name: 'cli' });
      requesters.push(String(t.body.token));
    }
    cat = await aCatalogue(db.dataSource);
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await factory?.close();
    await fleet?.stop();
  });
  // Each test starts from empty hosts: a request it left placed would still hold capacity.
  const placed: Array<{ token: string; id: string }> = [];
  afterEach(async () => {
    for (const p of placed.splice(0)) {
      // A request placement failed has ended already; the placed ones release their host.
      const res = await call(p.token, 'POST', `/v1/vm-requests/${p.id}/actions/cancel`, {});
      expect([200, 409]).toContain(res.status);
    }
  });

  /** One request per requester, all sent at once; the approved ones are cancelled after the test. */
  const requestAll = (count: number, over: Json) =>
    Promise.all(
      requesters.slice(0, count).map(async (token, i) => {
        const res = await call(token, 'POST', '/v1/vm-requests', {
          name: `${mode}-vm-${Math.random().toString(36).slice(2, 7)}-${i}`,
          vcpus: 1,
          diskGb: 1,
          imageId: cat.image.id,
          networkId: cat.network.id,
          lifecycleClass: 'cattle',
          ...over,
        });
        if (res.body.state === 'approved') placed.push({ token, id: String(res.body.id) });
        return res;
      }),
    );

  /** Requests and places them all at once, as that many provision jobs would; the requests as placement left them. */
  const requestAndPlaceAll = async (count: number, over: Json) => {
    const posted = await requestAll(count, over);
    expect(posted.map((r) => [r.status, r.body.state])).toEqual(Array(count).fill([201, 'approved']));
    const service = app.get(VmRequestService);
    const uow = new PgVmRequestUnitOfWork(db.dataSource);
    await Promise.all(
      posted.map((r) =>
        uow.run(async (tx) => service.place(tx, (await tx.requests.get(String(r.body.id)))!)),
      ),
    );
    return Promise.all(posted.map((r) => call(admin, 'GET', `/v1/vm-requests/${String(r.body.id)}`)));
  };

  it('concurrent requests never both take the last room on a host', async () => {
    // The smaller host's free memory after the 1 GiB dom0 reserve, plus a little: one such VM
    // fits on each host, never two.
    const free = Math.min(...fleet.hosts.map((h) => h.sim.state.memory().freeMb));
    const memoryMb = Math.floor((free - 1024) / 2) + 256;
    const results = await requestAndPlaceAll(6, { memoryMb });
    const approved = results.filter((r) => r.body.state === 'approved');
    const failed = results.filter((r) => r.body.state === 'failed');
    expect(approved).toHaveLength(2);
    expect(failed).toHaveLength(4);
    // One on each host: neither host was promised twice.
    expect(new Set(approved.map((r) => hostIds.get(String(r.body.hostId))))).toEqual(
      new Set(fleet.hosts.map((h) => h.name)),
    );
    for (const f of failed) {
      expect(f.body.stateReason).toBe('no host passes the placement filters');
      const hosts = (f.body.error as { hosts: Array<{ reasons: Array<{ code: string }> }> }).hosts;
      expect(hosts.map((h) => h.reasons.map((x) => x.code))).toEqual([
        ['insufficient_memory'],
        ['insufficient_memory'],
      ]);
    }
    // The promises stand until the domains exist: the preview sees no room either.
    const preview = await call(admin, 'GET', `/v1/placement/preview?memoryMb=${memoryMb}&vcpus=1&diskGb=1`);
    expect(preview.body).toMatchObject({ chosen: null });
  });

  it('hard anti-affinity spreads a group over the hosts and refuses a third member with the reason', async () => {
    const group = 'db.primary_1';
    const results = await requestAndPlaceAll(3, { memoryMb: 256, antiAffinityGroup: group });
    const approved = results.filter((r) => r.body.state === 'approved');
    expect(new Set(approved.map((r) => hostIds.get(String(r.body.hostId))))).toEqual(
      new Set(fleet.hosts.map((h) => h.name)),
    );
    const [failed, ...more] = results.filter((r) => r.body.state === 'failed');
    expect(more).toHaveLength(0);
    expect(failed?.body.stateReason).toBe(
      `hard anti-affinity group "${group}": every host with capacity already holds a member`,
    );
    expect(failed?.body.hostId).toBeNull();
    // Capacity was not the problem: a request outside the group still fits.
    const outside = await requestAndPlaceAll(1, { memoryMb: 256 });
    expect(outside[0]?.body.state).toBe('approved');
    expect(typeof outside[0]?.body.hostId).toBe('string');
    // The preview accepts every group name a request may carry, and explains the same way.
    const preview = await call(
      admin,
      'GET',
      `/v1/placement/preview?memoryMb=256&vcpus=1&diskGb=1&group=${group}`,
    );
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({
      chosen: null,
      reason: `hard anti-affinity group "${group}": every host with capacity already holds a member`,
    });
  });

  it('one schema names a group: what the preview refuses, a request refuses too', async () => {
    for (const bad of ['Db', '-db', 'd b', 'x'.repeat(64)]) {
      const preview = await call(
        admin,
        'GET',
        `/v1/placement/preview?memoryMb=256&vcpus=1&diskGb=1&group=${encodeURIComponent(bad)}`,
      );
      expect(preview.status).toBe(400);
      expect(JSON.stringify(preview.body)).toContain('group');
      const [req] = await requestAll(1, { memoryMb: 256, antiAffinityGroup: bad });
      expect(req?.status).toBe(400);
      expect(JSON.stringify(req?.body)).toContain('antiAffinityGroup');
    }
  });
});
