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

/**
 * The whole path with real processes: a requester asks over HTTP, the API approves and places
 * the request and commits the job, the worker provisions over SSH on a simulated host, and the
 * domain shows up in that host's `xl list`.
 */
describe('a VM requested over HTTP', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let fleet: SimulatedFleet;
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
    return { status: res.status, body: (await res.json()) as Json };
  };

  beforeAll(async () => {
    fleet = await startSimulatedFleet({ count: 2, mode: 'inprocess' });
    // The API process has no SSH key to probe a registration with, so hosts go in through the repository.
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
    const env = { DATABASE_URL: db.url, REDIS_URL, NORM_REDIS_PREFIX: prefix };
    api = await startApi(env);
    admin = readFileSync(join(api.stateDir, 'admin-token'), 'utf8').trim();
    worker = startApp('worker', {
      ...env,
      NORM_SSH_KEY_PATH: fleet.clientKey.privateKeyPath,
      NORM_XEN_CONFIG_DIR: fleet.hosts[0]!.configDir,
      // Host sync would rewrite capacity from the simulators: fine, but not what this test is about.
      NORM_HOST_SYNC_INTERVAL: '1h',
    });
    await worker.waitForLine((l) => l.msg === 'worker started');
  }, 60_000);

  afterAll(async () => {
    await worker?.stop('SIGTERM');
    await api?.stop();
    await fleet?.stop();
  });

  it('ends running, with its domain in xl list on the chosen host', async () => {
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
      name: 'carol',
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
    expect(created.body.state).toBe('approved');
    const id = String(created.body.id);

    const done = await expectEventually(
      async () => {
        const r = await call(token, 'GET', `/v1/vm-requests/${id}`);
        expect(r.body.state).toBe('running');
        return r.body;
      },
      { timeoutMs: 30_000 },
    );
    const hostId = String(done.hostId);
    const instances = await call(token, 'GET', '/v1/instances');
    const instance = (instances.body.items as Json[])[0]!;
    expect(instance).toMatchObject({ state: 'running', hostId, domainName: 'web-1' });
    const hostRow = await new HostRepository(db.dataSource.manager).get(hostId);
    const sim = fleet.hosts.find((h) => h.name === hostRow?.name)!;
    expect(sim.sim.state.findByName('web-1')).toMatchObject({ domid: instance.domid });
    for (const other of fleet.hosts.filter((h) => h !== sim))
      expect(other.sim.state.findByName('web-1')).toBeUndefined();

    // An action over HTTP: 202 and an operation that reaches succeeded, waited for with ?wait.
    const stop = await call(token, 'POST', `/v1/instances/${String(instance.id)}/actions/stop`);
    expect(stop.status).toBe(202);
    const op = await call(token, 'GET', `/v1/operations/${String(stop.body.id)}?wait=20s`);
    expect(op.body.state).toBe('succeeded');
    expect((await call(token, 'GET', `/v1/instances/${String(instance.id)}`)).body.state).toBe('stopped');
  }, 90_000);
});
