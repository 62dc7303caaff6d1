import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DomainError, loadConfig, type XenHost, type XenHostFactory } from '@norm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../../apps/api/src/api-app';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { insertInstance, insertVmRequest } from './builders';

const GOOD_KEY = `SHA256:${'A'.repeat(43)}`;
type Json = Record<string, unknown>;
const flags = { running: false, blocked: true, paused: false, shutdown: false, dying: false };

/** A transport double: `bad-key` presents another key, `down` answers nothing, anything else is a healthy host. */
const xen: XenHostFactory = {
  forHost(endpoint) {
    const fail = (): never => {
      if (endpoint.address === 'down.example')
        throw new DomainError('HostUnreachable', 'host unreachable', {
          host: endpoint.name,
          reason: 'ECONNREFUSED',
        });
      throw new DomainError('HostKeyMismatch', 'host key does not match the pinned fingerprint', {
        host: endpoint.name,
        expected: endpoint.hostKeyFingerprint,
        actual: `SHA256:${'B'.repeat(43)}`,
      });
    };
    const ok = endpoint.address !== 'down.example' && endpoint.hostKeyFingerprint === GOOD_KEY;
    const answer = <T>(value: T): Promise<T> => (ok ? Promise.resolve(value) : Promise.resolve().then(fail));
    return {
      hostName: endpoint.name,
      info: () =>
        answer({
          host: endpoint.name,
          nrCpus: 8,
          virtCaps: [],
          totalMemoryMb: 32_768,
          freeMemoryMb: 20_000,
          xenMajor: 4,
          xenMinor: 17,
          xenExtra: '.3',
          xenVersion: '4.17.3',
          raw: {},
        }),
      listDomains: () =>
        answer([{ name: 'stray', domid: 7, memoryMb: 512, vcpus: 1, state: '-b----', flags, cpuTimeS: 3 }]),
      listDomainDetails: () => answer([{ domid: 7, name: 'stray', disks: [], nics: [] }]),
      volumeGroups: () => answer([{ name: 'vg0', sizeMb: 500_000, freeMb: 400_000 }]),
    } as unknown as XenHost;
  },
  readFingerprint: () => Promise.resolve(GOOD_KEY),
  close: () => Promise.resolve(),
};

describe('inventory over HTTP', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let app: NestFastifyApplication;
  let token: string;

  beforeAll(async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'norm-inventory-'));
    const config = loadConfig({
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_STATE_DIR: stateDir,
      NORM_LOG_LEVEL: 'silent',
    });
    app = await createApiApp({ config, xen });
    await app.init();
    token = await expectEventually(() => readFileSync(join(stateDir, 'admin-token'), 'utf8').trim());
  });
  afterAll(async () => {
    await app?.close();
  });

  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
    return {
      status: res.statusCode,
      body: (res.body ? JSON.parse(res.body) : undefined) as Record<string, unknown>,
    };
  };
  const host = (over: Record<string, unknown> = {}) => ({
    name: 'xen1',
    address: '10.0.0.1',
    sshUser: 'norm',
    hostKeyFingerprint: GOOD_KEY,
    labels: { rack: 'r1' },
    ...over,
  });

  it('registers a reachable host with its probed capacity', async () => {
    const res = await call('POST', '/v1/hosts', host());
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: 'xen1',
      status: 'online',
      freeMemoryMb: 20_000,
      storageFreeMb: 400_000,
    });
    const list = await call('GET', '/v1/hosts');
    expect(list.body).toHaveLength(1);
  });

  it('refuses a wrong key naming the field, and an unreachable host clearly', async () => {
    const wrong = await call(
      'POST',
      '/v1/hosts',
      host({ name: 'xen2', hostKeyFingerprint: `SHA256:${'C'.repeat(43)}` }),
    );
    expect(wrong.status).toBeGreaterThanOrEqual(400);
    expect(wrong.status).toBeLessThan(500);
    expect(JSON.stringify(wrong.body)).toContain('hostKeyFingerprint');
    const down = await call('POST', '/v1/hosts', host({ name: 'xen3', address: 'down.example' }));
    expect(down.status).toBe(503);
    expect(JSON.stringify(down.body)).toContain('host unreachable');
    expect((await call('GET', '/v1/hosts')).body).toHaveLength(1);
  });

  it('answers a bad or unknown field with a 4xx naming it', async () => {
    for (const [payload, field] of [
      [host({ name: 'Bad Name!' }), 'name'],
      [host({ port: 70000 }), 'port'],
      [host({ owner: 'me' }), 'owner'],
    ] as const) {
      const res = await call('POST', '/v1/hosts', payload);
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toContain(field);
    }
    const q = await call('GET', '/v1/placement/preview?memoryMb=abc&vcpus=1&diskGb=1');
    expect(q.status).toBe(400);
    expect(JSON.stringify(q.body)).toContain('memoryMb');
    const net = await call('POST', '/v1/networks', {
      name: 'n1',
      bridge: 'xenbr0',
      cidr: '10.9.0.0/24',
      gateway: '10.9.0.50',
      rangeStart: '10.9.0.10',
      rangeEnd: '10.9.0.100',
    });
    expect(net.status).toBeGreaterThanOrEqual(400);
    expect(net.status).toBeLessThan(500);
    expect(JSON.stringify(net.body)).toContain('gateway');
  });

  it('drains a host in maintenance from placement and back', async () => {
    const [h] = (await call('GET', '/v1/hosts')).body as unknown as Array<{ id: string }>;
    const preview = '/v1/placement/preview?memoryMb=1024&vcpus=1&diskGb=10';
    expect((await call('GET', preview)).body).toMatchObject({ chosen: { hostName: 'xen1' } });
    expect((await call('POST', `/v1/hosts/${h!.id}/actions/maintenance`, { enabled: true })).status).toBe(
      200,
    );
    const drained = await call('GET', preview);
    expect(drained.body).toMatchObject({
      chosen: null,
      rejected: [{ hostName: 'xen1', reasons: [{ code: 'maintenance' }] }],
    });
    await call('POST', `/v1/hosts/${h!.id}/actions/maintenance`, { enabled: false });
    expect((await call('GET', preview)).body).toMatchObject({ chosen: { hostName: 'xen1' } });
  });

  it('reports drift per host and fleet-wide, and refuses to delete a host with instances', async () => {
    const [h] = (await call('GET', '/v1/hosts')).body as unknown as Array<{ id: string }>;
    await insertInstance(db.dataSource, { hostId: h!.id, domainName: 'norm-gone' });
    const drift = await call('GET', `/v1/hosts/${h!.id}/drift`);
    expect(drift.status).toBe(200);
    const kinds = (drift.body.entries as Array<{ kind: string }>).map((e) => e.kind).sort();
    expect(kinds).toEqual(['orphan_domain', 'vanished_instance']);
    expect((await call('GET', '/v1/drift')).body.entries).toHaveLength(2);
    const del = await call('DELETE', `/v1/hosts/${h!.id}`);
    expect(del.status).toBe(409);
    expect(del.body).toMatchObject({ error: { details: { liveInstances: 1, requestsInFlight: 0 } } });
  });

  it('GET /v1/hosts/:id answers the host, 404 for an unknown id and 400 for a malformed one', async () => {
    const [h] = (await call('GET', '/v1/hosts')).body as unknown as Array<{ id: string }>;
    const got = await call('GET', `/v1/hosts/${h!.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({
      id: h!.id,
      name: 'xen1',
      labels: { rack: 'r1' },
      status: 'online',
      totalMemoryMb: 32_768,
      observedDomains: [{ name: 'stray', domid: 7 }],
    });
    expect((await call('GET', '/v1/hosts/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    const bad = await call('GET', '/v1/hosts/not-a-uuid');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('id');
  });

  it('PATCH /v1/hosts/:id changes labels and limits, audited; bad input is a 400 naming the field', async () => {
    const [h] = (await call('GET', '/v1/hosts')).body as unknown as Array<{ id: string }>;
    const url = `/v1/hosts/${h!.id}`;
    const res = await call('PATCH', url, {
      labels: { rack: 'r2', environment: 'staging' },
      limits: { dom0ReserveMb: 2048 },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      labels: { rack: 'r2', environment: 'staging' },
      limits: { dom0ReserveMb: 2048 },
      name: 'xen1',
    });
    expect((await call('GET', url)).body).toMatchObject({ labels: { rack: 'r2', environment: 'staging' } });
    // The per-host reserve is what placement uses now: 20,000 free − 2,048 leaves 17,952.
    const preview = await call('GET', '/v1/placement/preview?memoryMb=17953&vcpus=1&diskGb=1');
    expect(preview.body).toMatchObject({ rejected: [{ reasons: [{ code: 'insufficient_memory' }] }] });
    const audit = await db.dataSource.query<Array<{ before: Json; after: Json }>>(
      `SELECT "before", "after" FROM "audit_events" WHERE "action" = 'host.update' AND "object_id" = $1`,
      [h!.id],
    );
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ before: { labels: { rack: 'r1' } }, after: { labels: { rack: 'r2' } } });

    for (const [payload, field] of [
      [{ labels: { 'Bad Key': 'x' } }, 'Bad Key'],
      [{ limits: { dom0ReserveMb: -1 } }, 'dom0ReserveMb'],
      [{ limits: { cpus: 4 } }, 'cpus'],
      [{ name: 'renamed' }, 'name'],
      [{}, 'labels'],
    ] as const) {
      const bad = await call('PATCH', url, payload);
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toContain(field);
    }
    expect((await call('GET', url)).body).toMatchObject({ name: 'xen1', limits: { dom0ReserveMb: 2048 } });
    expect(
      (await call('PATCH', '/v1/hosts/00000000-0000-4000-8000-000000000000', { labels: {} })).status,
    ).toBe(404);
  });

  it("sets a host's provisioning cap through its limits, and refuses a bad one", async () => {
    const [h] = (await call('GET', '/v1/hosts')).body as unknown as Array<{ id: string }>;
    const set = await call('PATCH', `/v1/hosts/${h!.id}`, { limits: { provisionConcurrency: 3 } });
    expect(set.status).toBe(200);
    expect(set.body.limits).toMatchObject({ provisionConcurrency: 3 });
    for (const bad of [0, 1.5, 'two', 65]) {
      const res = await call('PATCH', `/v1/hosts/${h!.id}`, { limits: { provisionConcurrency: bad } });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toContain('provisionConcurrency');
    }
    expect((await call('GET', `/v1/hosts/${h!.id}`)).body.limits).toMatchObject({ provisionConcurrency: 3 });
    await call('PATCH', `/v1/hosts/${h!.id}`, { limits: {} });
  });

  it('DELETE is refused while Norm has live instances or requests in flight there, then succeeds and keeps the history', async () => {
    const created = await call('POST', '/v1/hosts', host({ name: 'xen4', address: '10.0.0.4' }));
    expect(created.status).toBe(201);
    const id = String(created.body.id);
    const url = `/v1/hosts/${id}`;
    // A request placed there, its instance not created yet: capacity is promised on this host.
    const request = await insertVmRequest(db.dataSource, { state: 'approved', hostId: id });
    const inFlight = await call('DELETE', url);
    expect(inFlight.status).toBe(409);
    expect(inFlight.body).toMatchObject({ error: { details: { liveInstances: 0, requestsInFlight: 1 } } });
    // It ran there and was decommissioned: history, not presence.
    await db.dataSource.query(`UPDATE "vm_requests" SET "state" = 'running' WHERE "id" = $1`, [request]);
    const instance = await insertInstance(db.dataSource, {
      hostId: id,
      domainName: 'norm-old-1',
      state: 'running',
      requestId: request,
    });
    expect((await call('DELETE', url)).status).toBe(409);
    await db.dataSource.query(`UPDATE "instances" SET "state" = 'decommissioned' WHERE "id" = $1`, [
      instance,
    ]);

    const del = await call('DELETE', url);
    expect(del.status).toBe(204);
    expect((await call('GET', url)).status).toBe(404);
    expect((await call('DELETE', url)).status).toBe(404);
    // The rows that ran there remain, detached; the audit chain says what the host was.
    const [row] = await db.dataSource.query<Array<{ host_id: string | null; state: string }>>(
      `SELECT "host_id", "state" FROM "instances" WHERE "id" = $1`,
      [instance],
    );
    expect(row).toEqual({ host_id: null, state: 'decommissioned' });
    const audit = await db.dataSource.query<Array<{ before: Json; reason: string }>>(
      `SELECT "before", "reason" FROM "audit_events" WHERE "action" = 'host.delete' AND "object_id" = $1`,
      [id],
    );
    expect(audit).toEqual([
      {
        before: expect.objectContaining({ name: 'xen4', address: '10.0.0.4' }) as unknown,
        reason: 'detached 1 finished instance(s) and 1 finished request(s)',
      },
    ]);
    // The name is free again.
    expect((await call('POST', '/v1/hosts', host({ name: 'xen4', address: '10.0.0.4' }))).status).toBe(201);
  });

  it('manages images and networks', async () => {
    const img = await call('POST', '/v1/images', {
      name: 'centos-7',
      osLabel: 'CentOS 7',
      boot: { method: 'pygrub' },
      defaultDiskGb: 20,
      goldenVolumes: [{ vg: 'vg0', lv: 'golden-centos7' }],
    });
    expect(img.status).toBe(201);
    const kernel = await call('POST', '/v1/images', {
      name: 'alma-9-pv',
      osLabel: 'AlmaLinux 9',
      boot: {
        method: 'kernel',
        kernel: '/boot/vmlinuz-pv',
        ramdisk: '/boot/initrd-pv',
        kernelArgs: 'console=hvc0',
      },
      defaultDiskGb: 10,
      goldenVolumes: [
        { vg: 'vg0', lv: 'golden-alma9' },
        { vg: 'vg1', lv: 'golden-alma9' },
      ],
    });
    expect(kernel.status).toBe(201);
    // Read back by id, every field as the create answered it (dates, boot, volumes included).
    for (const created of [img, kernel]) {
      const read = await call('GET', `/v1/images/${String(created.body.id)}`);
      expect(read.status).toBe(200);
      expect(read.body).toEqual(created.body);
    }
    expect((await call('GET', `/v1/images/${randomUUID()}`)).status).toBe(404);
    const bad = await call('POST', '/v1/images', {
      name: 'k',
      osLabel: 'x',
      boot: { method: 'kernel' },
      defaultDiskGb: 20,
      goldenVolumes: [{ vg: 'vg0', lv: 'g' }],
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('kernel');
    const net = await call('POST', '/v1/networks', {
      name: 'lan',
      bridge: 'xenbr0',
      cidr: '10.9.0.0/24',
      gateway: '10.9.0.1',
      rangeStart: '10.9.0.10',
      rangeEnd: '10.9.0.100',
    });
    expect(net.status).toBe(201);
    const got = await call('GET', `/v1/networks/${String(net.body.id)}`);
    expect(got.body).toMatchObject({ name: 'lan', usage: { size: 91, allocated: 0 } });
    expect((await call('DELETE', `/v1/images/${String(img.body.id)}`)).status).toBe(204);
  });
});
