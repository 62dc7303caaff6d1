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
import { type ApiProcess, call, startApi } from '../identity/api-process';

type Json = Record<string, unknown>;

/**
 * "Killing the api between commit and enqueue loses no job." The api never talks to BullMQ: a
 * request's job is an outbox row committed with the request, and a relay in the worker moves it
 * to the queue. So the worst moment to kill the api is right after that commit, while no worker
 * runs at all: the job exists only as a row. A worker started afterwards must run it, once.
 */
describe('the api killed with SIGKILL right after committing a request, before any enqueue', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let fleet: SimulatedFleet;
  let api: ApiProcess;
  let worker: AppProcess | undefined;

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
  }, 60_000);

  afterAll(async () => {
    await worker?.stop('SIGTERM');
    await api?.stop();
    await fleet?.stop();
  });

  it('leaves the job as a committed outbox row that a later worker runs exactly once', async () => {
    const admin = readFileSync(join(api.stateDir, 'admin-token'), 'utf8').trim();
    const post = async (path: string, body: unknown): Promise<Json> => {
      const r = await call(api.url, 'POST', path, admin, body);
      expect(r.status).toBe(201);
      return r.body as Json;
    };
    const image = await post('/v1/images', {
      name: 'tiny',
      osLabel: 'busybox',
      boot: { method: 'pygrub' },
      defaultDiskGb: 1,
      goldenVolumes: [{ vg: 'vg0', lv: 'golden-tiny' }],
    });
    const network = await post('/v1/networks', {
      name: 'lab',
      bridge: 'xenbr0',
      cidr: '10.78.0.0/24',
      gateway: '10.78.0.1',
      rangeStart: '10.78.0.10',
      rangeEnd: '10.78.0.200',
    });
    const request = await post('/v1/vm-requests', {
      name: 'survivor-1',
      vcpus: 1,
      memoryMb: 256,
      diskGb: 1,
      imageId: image.id,
      networkId: network.id,
      lifecycleClass: 'cattle',
    });
    expect(request.state).toBe('approved');
    const id = String(request.id);

    // The answer came back, so the transaction committed; kill the api before anything else runs.
    await api.kill();

    const rows = await db.dataSource.query<
      { job_name: string; dispatched_at: Date | null; completed_at: Date | null }[]
    >(`SELECT "job_name", "job_id", "dispatched_at", "completed_at" FROM "outbox" WHERE "job_id" LIKE $1`, [
      `%${id}%`,
    ]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ job_name: 'VmProvision', dispatched_at: null, completed_at: null });

    worker = startApp('worker', {
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_SSH_KEY_PATH: fleet.clientKey.privateKeyPath,
      NORM_XEN_CONFIG_DIR: fleet.hosts[0]!.configDir,
      NORM_HOST_SYNC_INTERVAL: '1h',
    });
    await worker.waitForLine((l) => l.msg === 'worker started');

    await expectEventually(
      async () => {
        const [row] = await db.dataSource.query<{ state: string }[]>(
          `SELECT "state" FROM "vm_requests" WHERE "id" = $1`,
          [id],
        );
        expect(row?.state).toBe('running');
      },
      { timeoutMs: 30_000 },
    );
    const sim = fleet.hosts[0]!.sim;
    expect(sim.state.findByName('survivor-1')).toBeDefined();
    // Exactly once: one create on the host, one volume, and the outbox row completed once.
    expect(sim.commands(['xl', 'create'])).toHaveLength(1);
    expect(sim.commands(['lvcreate'])).toHaveLength(1);
    // The handler writes `running` before its job returns; the row is completed just after.
    await expectEventually(
      async () => {
        const [after] = await db.dataSource.query<{ dispatch_attempts: number; completed_at: Date | null }[]>(
          `SELECT "dispatch_attempts", "completed_at" FROM "outbox" WHERE "job_id" LIKE $1`,
          [`%${id}%`],
        );
        expect(after?.completed_at).not.toBeNull();
        expect(after?.dispatch_attempts).toBe(1);
      },
      { timeoutMs: 10_000 },
    );
  }, 90_000);
});
