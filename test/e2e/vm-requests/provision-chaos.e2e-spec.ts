import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostRepository } from '@norm/inventory';
import { type SimulatedFleet, startSimulatedFleet } from '@norm/xen/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, startApp } from '../../harness/app-process';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { type ApiProcess, startApi } from '../identity/api-process';

type Json = Record<string, unknown>;

const STEPS = [
  'place',
  'begin',
  'allocate-ip',
  'create-disk',
  'create-domain',
  'confirm',
  'mark-running',
] as const;

/**
 * kill -9 the worker right before each provisioning step in turn, then start another worker.
 * Every run must end running with exactly one domain, one volume and one live address.
 */
describe('provisioning survives a worker killed at any step', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let fleet: SimulatedFleet;
  let api: ApiProcess;
  let token: string;
  let imageId: string;
  let networkId: string;
  const env = (): Record<string, string> => ({
    DATABASE_URL: db.url,
    REDIS_URL,
    NORM_REDIS_PREFIX: prefix,
    NORM_SSH_KEY_PATH: fleet.clientKey.privateKeyPath,
    NORM_XEN_CONFIG_DIR: fleet.hosts[0]!.configDir,
    NORM_HOST_SYNC_INTERVAL: '1h',
    NORM_JOB_LOCK: '2s',
    // The recovering worker's sweep resumes the stalled request without waiting for BullMQ's stall check.
    NORM_PROVISION_RESUME_AFTER: '2s',
    NORM_STUCK_WORK_INTERVAL: '500ms',
  });

  const call = async (t: string, method: string, path: string, body?: unknown): Promise<Json> => {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${t}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return (await res.json()) as Json;
  };

  beforeAll(async () => {
    fleet = await startSimulatedFleet({ count: 1, mode: 'inprocess' });
    const h = fleet.hosts[0]!;
    await new HostRepository(db.dataSource.manager).create(
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
    api = await startApi({ DATABASE_URL: db.url, REDIS_URL, NORM_REDIS_PREFIX: prefix });
    const admin = readFileSync(join(api.stateDir, 'admin-token'), 'utf8').trim();
    imageId = String(
      (
        await call(admin, 'POST', '/v1/images', {
          name: 'centos7',
          osLabel: 'CentOS 7',
          boot: { method: 'pygrub' },
          defaultDiskGb: 1,
          goldenVolumes: [{ vg: 'vg0', lv: 'golden-tiny' }],
        })
      ).id,
    );
    networkId = String(
      (
        await call(admin, 'POST', '/v1/networks', {
          name: 'lab',
          bridge: 'xenbr0',
          cidr: '10.78.0.0/24',
          gateway: '10.78.0.1',
          rangeStart: '10.78.0.10',
          rangeEnd: '10.78.0.200',
        })
      ).id,
    );
    const p = await call(admin, 'POST', '/v1/principals', {
      kind: 'person',
      name: 'chaos',
      roles: ['requester'],
    });
    token = String(
      (await call(admin, 'POST', `/v1/principals/${String(p.id)}/tokens`, { name: 'cli' })).token,
    );
  }, 60_000);

  afterAll(async () => {
    await api?.stop();
    await fleet?.stop();
  });

  it.each(STEPS)(
    'killed before %s: one domain, one volume, one address, running',
    async (step) => {
      const started: AppProcess[] = [];
      try {
        const a = startApp('worker', { ...env(), NORM_TEST_PAUSE_PROVISION_AT: step });
        started.push(a);
        await a.waitForLine((l) => l.msg === 'worker started');
        const name = `chaos-${step}`;
        const created = await call(token, 'POST', '/v1/vm-requests', {
          name,
          vcpus: 1,
          memoryMb: 256,
          diskGb: 1,
          imageId,
          networkId,
          lifecycleClass: 'cattle',
        });
        const id = String(created.id);
        await a.waitForLine((l) => l.msg === 'provision paused for a test' && l.requestId === id, 30_000);
        await a.stop('SIGKILL');

        const b = startApp('worker', env());
        started.push(b);
        await expectEventually(
          async () => expect((await call(token, 'GET', `/v1/vm-requests/${id}`)).state).toBe('running'),
          {
            timeoutMs: 60_000,
            intervalMs: 200,
          },
        );
        const sim = fleet.hosts[0]!.sim.state;
        expect(sim.domainList().filter((d) => d.name === name)).toHaveLength(1);
        expect(sim.lvs.filter((lv) => lv.name.startsWith(name))).toHaveLength(1);
        const allocations: Array<{ n: number }> = await db.dataSource.query(
          `SELECT count(*)::int AS n FROM "ip_allocations" a JOIN "instances" i ON i."id" = a."instance_id"
           WHERE i."vm_request_id" = $1 AND a."released_at" IS NULL`,
          [id],
        );
        expect(allocations[0]?.n).toBe(1);
        const instances: Array<{ n: number }> = await db.dataSource.query(
          `SELECT count(*)::int AS n FROM "instances" WHERE "vm_request_id" = $1 AND "state" = 'running'`,
          [id],
        );
        expect(instances[0]?.n).toBe(1);
      } finally {
        await Promise.all(started.map((p) => p.stop('SIGKILL')));
      }
    },
    120_000,
  );
});
