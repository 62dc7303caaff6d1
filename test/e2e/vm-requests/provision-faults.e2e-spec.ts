import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostRepository } from '@norm/inventory';
import { type SimulatedFleet, startSimulatedFleet } from '@norm/xen/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, freePort, startApp } from '../../harness/app-process';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { type ApiProcess, startApi } from '../identity/api-process';

type Json = Record<string, unknown>;

/**
 * A Redis of this test's own, on its own port, with no persistence: stopping and starting it
 * is a Redis restart that loses every queue, lock and job (the worst case for BullMQ), without
 * touching the Redis other tests share.
 */
class OwnRedis {
  private child: ChildProcess | undefined;
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.child = child;
    await expectEventually(
      async () => {
        const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
        // Refused connections while the server boots are expected; connect() reports them.
        probe.on('error', () => undefined);
        try {
          await probe.connect();
          expect(await probe.ping()).toBe('PONG');
        } finally {
          probe.disconnect();
        }
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Faults outside the worker itself: Redis restarted (empty) while a provision is in flight, and
 * a host that hangs inside `xl create` past the command timeout. Each ends running with exactly
 * one domain, one volume and one live address.
 */
describe('provisioning through infrastructure faults', () => {
  const db = useTestDatabase();
  let redis: OwnRedis;
  let fleet: SimulatedFleet;
  let api: ApiProcess;
  let worker: AppProcess | undefined;
  let token: string;
  let imageId: string;
  let networkId: string;

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

  const request = async (name: string): Promise<string> => {
    const created = await call(token, 'POST', '/v1/vm-requests', {
      name,
      vcpus: 1,
      memoryMb: 256,
      diskGb: 1,
      imageId,
      networkId,
      lifecycleClass: 'cattle',
    });
    expect(created.state).toBe('approved');
    return String(created.id);
  };

  const expectOneOfEverything = async (id: string, name: string): Promise<void> => {
    const sim = fleet.hosts[0]!.sim.state;
    expect(sim.domainList().filter((d) => d.name === name)).toHaveLength(1);
    expect(sim.lvs.filter((lv) => lv.name.startsWith(name))).toHaveLength(1);
    const [alloc] = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM "ip_allocations" a JOIN "instances" i ON i."id" = a."instance_id"
        WHERE i."vm_request_id" = $1 AND a."released_at" IS NULL`,
      [id],
    );
    expect(alloc?.n).toBe(1);
    const [inst] = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM "instances" WHERE "vm_request_id" = $1 AND "state" = 'running'`,
      [id],
    );
    expect(inst?.n).toBe(1);
  };

  beforeAll(async () => {
    redis = new OwnRedis(await freePort());
    await redis.start();
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
    api = await startApi({ DATABASE_URL: db.url, REDIS_URL: redis.url, NORM_REDIS_PREFIX: 'norm' });
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
          cidr: '10.79.0.0/24',
          gateway: '10.79.0.1',
          rangeStart: '10.79.0.10',
          rangeEnd: '10.79.0.200',
        })
      ).id,
    );
    const p = await call(admin, 'POST', '/v1/principals', {
      kind: 'person',
      name: 'faults',
      roles: ['requester'],
    });
    token = String(
      (await call(admin, 'POST', `/v1/principals/${String(p.id)}/tokens`, { name: 'cli' })).token,
    );
    worker = startApp('worker', {
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      NORM_REDIS_PREFIX: 'norm',
      NORM_SSH_KEY_PATH: fleet.clientKey.privateKeyPath,
      NORM_XEN_CONFIG_DIR: h.configDir,
      NORM_HOST_SYNC_INTERVAL: '1h',
      NORM_JOB_LOCK: '2s',
      NORM_SSH_COMMAND_TIMEOUT: '3s',
      // A request whose job Redis lost is enqueued again by the sweep, from Postgres.
      NORM_PROVISION_RESUME_AFTER: '3s',
      NORM_STUCK_WORK_INTERVAL: '500ms',
    });
    await worker.waitForLine((l) => l.msg === 'worker started');
  }, 90_000);

  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await api?.stop();
    await fleet?.stop();
    await redis?.stop();
  });

  it('Redis restarted empty while xl create runs, and a request made as it comes back', async () => {
    const sim = fleet.hosts[0]!.sim;
    const hang = sim.faults.hangNext((argv) => argv.includes('xl') && argv.includes('create'));
    const id = await request('redis-restart');
    await hang.caught;
    await redis.stop();
    // Down long enough for the worker's job lock and every BullMQ connection to notice.
    await new Promise((r) => setTimeout(r, 1_000));
    await redis.start();
    hang.release();
    const second = await expectEventually(() => request('redis-after'), {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    for (const [rid, name] of [
      [id, 'redis-restart'],
      [second, 'redis-after'],
    ] as const) {
      await expectEventually(
        async () => expect((await call(token, 'GET', `/v1/vm-requests/${rid}`)).state).toBe('running'),
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      await expectOneOfEverything(rid, name);
    }
  }, 120_000);

  it('a host that hangs inside xl create past the timeout: retried, one domain', async () => {
    const sim = fleet.hosts[0]!.sim;
    // This create never answers; the late execution when it is finally released must not make a second domain.
    const hang = sim.faults.hangNext((argv) => argv.includes('xl') && argv.includes('create'));
    const id = await request('host-hang');
    await hang.caught;
    await expectEventually(
      async () => expect((await call(token, 'GET', `/v1/vm-requests/${id}`)).state).toBe('running'),
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(
      worker!.lines.some((l) => l.msg === 'provision step failed; will retry' && l.requestId === id),
    ).toBe(true);
    hang.release();
    await new Promise((r) => setTimeout(r, 500));
    await expectOneOfEverything(id, 'host-hang');
  }, 120_000);
});
