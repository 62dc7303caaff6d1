import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostRepository } from '@norm/inventory';
import { type SimulatedFleet, startSimulatedFleet } from '@norm/xen/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, startApp } from '../../harness/app-process';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { type NamedServer, startNamed } from '../../harness/named';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { type ApiProcess, startApi } from '../identity/api-process';

type Json = Record<string, unknown>;

const S = 1000;
/** Short versions of the real settings; the brakes that a single instance cannot trip keep their defaults. */
const TIMEOUT_MS = 4 * S;
const ALIVE_SILENT_GRACE_MS = 2 * S;
const CYCLE_MS = 1 * S;
const QUARANTINE_MS = 2 * S;
/** Heartbeats are written within 250 ms; the rest covers this shared 2-core box's scheduling noise. */
const SLACK_MS = 3 * S;

/**
 * Issue 8's lifecycle end to end with real processes: a cattle VM requested over HTTP runs on
 * a simulated host and beats with its instance token; once it stops beating, the reaper acts
 * within timeout + grace + one cycle (direct: destroys; two-phase: shuts it down, then destroys
 * after the quarantine), and the decommission removes its disk, frees its IP and deletes its A
 * and PTR records from a real BIND through the dns target.
 */
describe.each(['direct', 'two-phase'] as const)('a silent cattle instance, reaper %s', (mode) => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let fleet: SimulatedFleet;
  let named: NamedServer;
  let api: ApiProcess;
  let worker: AppProcess;
  let admin: string;

  const call = async (
    token: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Json }> => {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json };
  };

  beforeAll(async () => {
    fleet = await startSimulatedFleet({ count: 1, mode: 'inprocess' });
    named = await startNamed([
      { name: 'lab.example', updatable: true },
      { name: '0.77.10.in-addr.arpa', updatable: true },
    ]);
    const hosts = new HostRepository(db.dataSource.manager);
    for (const h of fleet.hosts)
      await hosts.create(
        {
          name: h.name,
          address: h.address,
          port: h.port,
          sshUser: h.user,
          sudo: false,
          hostKeyFingerprint: h.fingerprint,
          labels: {},
          limits: {},
        },
        {
          totalMemoryMb: 16_383,
          freeMemoryMb: 14_000,
          nrCpus: 4,
          xenVersion: '4.17.5',
          storageTotalMb: 512 * 1024,
          storageFreeMb: 500 * 1024,
          volumeGroups: [{ name: 'vg0', sizeMb: 512 * 1024, freeMb: 500 * 1024 }],
          domains: [],
        },
        new Date(),
      );
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_HEARTBEAT_TIMEOUT: `${TIMEOUT_MS}ms`,
      NORM_REAPER_MODE: mode,
      NORM_REAPER_QUARANTINE: `${QUARANTINE_MS}ms`,
      NORM_REAPER_INTERVAL: `${CYCLE_MS}ms`,
      NORM_REAPER_STARTUP_GRACE: `${TIMEOUT_MS}ms`,
      NORM_REAPER_ALIVE_SILENT_GRACE: `${ALIVE_SILENT_GRACE_MS}ms`,
      NORM_DEREGISTRATION_TARGETS: `dns:bind=127.0.0.1:${named.port}/lab.example/0.77.10.in-addr.arpa`,
      NORM_DEREGISTRATION_DNS_TSIG_KEY_NAME: named.keyName,
      NORM_DEREGISTRATION_DNS_TSIG_SECRET: named.secret,
      NORM_DEREGISTRATION_INTERVAL: '1s',
    };
    api = await startApi(env);
    admin = readFileSync(join(api.stateDir, 'admin-token'), 'utf8').trim();
    worker = startApp('worker', {
      ...env,
      NORM_SSH_KEY_PATH: fleet.clientKey.privateKeyPath,
      NORM_XEN_CONFIG_DIR: fleet.hosts[0]!.configDir,
      NORM_HOST_SYNC_INTERVAL: '1h',
    });
    await worker.waitForLine((l) => l.msg === 'worker started');
  }, 90_000);

  afterAll(async () => {
    await worker?.stop('SIGTERM');
    await api?.stop();
    await named?.stop();
    await fleet?.stop();
  });

  it('is gone from xl list, its disk removed, its IP free, its DNS records gone, every target done', async () => {
    const image = await call(admin, 'POST', '/v1/images', {
      name: 'centos7',
      osLabel: 'CentOS 7',
      boot: { method: 'pygrub' },
      defaultDiskGb: 1,
      goldenVolumes: [{ vg: 'vg0', lv: 'golden-tiny' }],
    });
    expect(image.status).toBe(201);
    const network = await call(admin, 'POST', '/v1/networks', {
      name: 'lab',
      bridge: 'xenbr0',
      cidr: '10.77.0.0/24',
      gateway: '10.77.0.1',
      rangeStart: '10.77.0.10',
      rangeEnd: '10.77.0.200',
    });
    expect(network.status).toBe(201);
    const principal = await call(admin, 'POST', '/v1/principals', {
      kind: 'person',
      name: 'dana',
      roles: ['requester'],
    });
    const token = String(
      (await call(admin, 'POST', `/v1/principals/${String(principal.body.id)}/tokens`, { name: 'cli' })).body
        .token,
    );
    const created = await call(token, 'POST', '/v1/vm-requests', {
      name: 'web-1',
      vcpus: 1,
      memoryMb: 512,
      diskGb: 2,
      imageId: image.body.id,
      networkId: network.body.id,
      lifecycleClass: 'cattle',
    });
    expect(created.status).toBe(201);
    const requestId = String(created.body.id);
    await expectEventually(
      async () =>
        expect((await call(token, 'GET', `/v1/vm-requests/${requestId}`)).body.state).toBe('running'),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const instance = ((await call(token, 'GET', '/v1/instances')).body.items as Json[])[0]!;
    const id = String(instance.id);
    const ip = String(instance.ip);
    const sim = fleet.hosts[0]!.sim;
    const disk = String(instance.diskVolume).split('/')[1]!;

    // The owner gets the heartbeat token; the guest's agent would present it.
    const issued = await call(token, 'POST', `/v1/instances/${id}/token`);
    expect(issued.status).toBe(201);
    const instanceToken = String(issued.body.token);
    const beat = async (): Promise<void> =>
      expect((await call(instanceToken, 'POST', `/v1/instances/${id}/heartbeat`, { seq: 1 })).status).toBe(
        202,
      );
    await beat();

    // What a DNS registration step would have written for it.
    const octets = ip.split('.');
    const ptr = `${[...octets].reverse().join('.')}.in-addr.arpa`;
    await named.nsupdate(['zone lab.example', `update add web-1.lab.example 300 A ${ip}`]);
    await named.nsupdate(['zone 0.77.10.in-addr.arpa', `update add ${ptr} 300 PTR web-1.lab.example.`]);
    expect(await named.dig('web-1.lab.example', 'A')).toEqual([ip]);
    expect(await named.dig(ptr, 'PTR')).toEqual(['web-1.lab.example.']);

    // Beating well past the timeout, grace and startup grace: nothing is reaped.
    const beatUntil = Date.now() + TIMEOUT_MS + ALIVE_SILENT_GRACE_MS + 2 * CYCLE_MS;
    while (Date.now() < beatUntil) {
      await beat();
      await new Promise((r) => setTimeout(r, 500));
    }
    await beat();
    const lastBeat = Date.now();
    expect((await call(token, 'GET', `/v1/instances/${id}`)).body.state).toBe('running');
    const status = await call(admin, 'GET', '/v1/lifecycle/status');
    expect(status.body).toMatchObject({ leaderSeen: true, mode, breaker: null });

    // Silence: within timeout + grace + one cycle the reaper decides, the decommission follows.
    await expectEventually(
      async () => expect((await call(admin, 'GET', `/v1/instances/${id}`)).body.state).toBe('decommissioned'),
      {
        timeoutMs: TIMEOUT_MS + ALIVE_SILENT_GRACE_MS + QUARANTINE_MS + 2 * CYCLE_MS + 20 * S,
        intervalMs: 100,
      },
    );
    const decommissionedAfter = Date.now() - lastBeat;
    const acts = await db.dataSource.query<Array<{ at: Date; outcome: string }>>(
      `SELECT "at", "after"->>'outcome' AS "outcome" FROM "audit_events"
        WHERE "action" = 'lifecycle.reap.act' AND "object_id" = $1 ORDER BY "seq"`,
      [id],
    );
    // One decision per phase: the reaper never acted twice on the same step.
    expect(acts.map((a) => a.outcome)).toEqual(
      mode === 'direct' ? ['act:destroy'] : ['act:quarantine', 'act:destroy'],
    );
    const decidedAfter = acts[0]!.at.getTime() - lastBeat;
    expect(decidedAfter).toBeGreaterThanOrEqual(TIMEOUT_MS + ALIVE_SILENT_GRACE_MS - 250);
    expect(decidedAfter).toBeLessThanOrEqual(TIMEOUT_MS + ALIVE_SILENT_GRACE_MS + CYCLE_MS + SLACK_MS);
    if (mode === 'two-phase') {
      const quarantined = acts[1]!.at.getTime() - acts[0]!.at.getTime();
      expect(quarantined).toBeGreaterThanOrEqual(QUARANTINE_MS);
      expect(quarantined).toBeLessThanOrEqual(QUARANTINE_MS + CYCLE_MS + SLACK_MS);
    }
    console.info('silent cattle', {
      mode,
      decidedAfterMs: decidedAfter,
      decommissionedAfterMs: decommissionedAfter,
    });

    expect(sim.state.findByName('web-1')).toBeUndefined();
    expect(sim.state.lvs.some((lv) => lv.name === disk)).toBe(false);
    const [held] = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM "ip_allocations" WHERE "ip" = $1::inet AND "released_at" IS NULL`,
      [ip],
    );
    expect(held!.n).toBe(0);
    expect(await named.dig('web-1.lab.example', 'A')).toEqual([]);
    expect(await named.dig(ptr, 'PTR')).toEqual([]);
    const rows = await call(admin, 'GET', `/v1/deregistrations?instance=${id}`);
    expect(rows.body).toEqual([expect.objectContaining({ target: 'dns:bind', status: 'done', attempts: 1 })]);
    const [decommissions] = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM "audit_events" WHERE "action" = 'instance.decommission' AND "object_id" = $1`,
      [id],
    );
    expect(decommissions!.n).toBe(1);
  }, 120_000);
});
