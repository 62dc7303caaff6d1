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
import { insertInstance } from './builders';

const GOOD_KEY = `SHA256:${'A'.repeat(43)}`;
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
