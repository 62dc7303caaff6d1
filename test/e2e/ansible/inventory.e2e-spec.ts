import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type InstanceRecord } from '@norm/core';
import { dataSourceOptions, PgVmRequestUnitOfWork } from '@norm/inventory';
import { type SimulatedFleet, startSimulatedFleet } from '@norm/xen/testing';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../../harness/env';
import { useRedisPrefix } from '../../harness/test-redis';
import { type ApiProcess, createMigratedDatabase, startApi } from '../identity/api-process';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..', '..');
const SCRIPT = join(ROOT, 'ansible', 'inventory', 'norm');

interface Listing {
  _meta: { hostvars: Record<string, Record<string, unknown>> };
  [group: string]: unknown;
}

/**
 * The real `ansible-inventory --list` through ansible/inventory/norm against the real api.
 * A simulated Xen host, images and networks go in through the API; instances are written with the domain's
 * own store (running them up through approval and provisioning is the requests issue's e2e),
 * and the decommission goes through the API, after which the instance is gone from every group.
 */
describe('Ansible dynamic inventory (ansible-inventory -i ansible/inventory/norm)', () => {
  const redisPrefix = useRedisPrefix();
  let db: { url: string; drop: () => Promise<void> };
  let api: ApiProcess;
  let ds: DataSource;
  let fleet: SimulatedFleet;
  let token: string;
  const instances: Record<string, InstanceRecord> = {};

  async function post(path: string, body: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${api.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  async function list(): Promise<Listing> {
    const { stdout } = await run('ansible-inventory', ['-i', SCRIPT, '--list'], {
      env: { ...process.env, NORM_URL: api.url, NORM_TOKEN: token, ANSIBLE_NOCOLOR: '1' },
      maxBuffer: 16 << 20,
    });
    return JSON.parse(stdout) as Listing;
  }

  const members = (listing: Listing, group: string): string[] =>
    ((listing[group] as { hosts?: string[] } | undefined)?.hosts ?? []).slice().sort();

  beforeAll(async () => {
    db = await createMigratedDatabase();
    // A simulated Xen host: registering a host makes the api probe it over SSH first.
    fleet = await startSimulatedFleet({ count: 1, mode: 'inprocess', namePrefix: 'xen-' });
    api = await startApi({
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: redisPrefix,
      NORM_SSH_KEY_PATH: fleet.clientKey.privateKeyPath,
    });
    token = (await readFile(join(api.stateDir, 'admin-token'), 'utf8')).trim();
    ds = new DataSource(dataSourceOptions(db.url));
    await ds.initialize();

    const sim = fleet.hosts[0]!;
    const host = await post('/v1/hosts', {
      name: 'xen-a',
      address: sim.address,
      port: sim.port,
      sshUser: sim.user,
      hostKeyFingerprint: sim.fingerprint,
      labels: { rack: 'r1' },
    });
    const image = await post('/v1/images', {
      name: 'debian-12',
      osLabel: 'Debian 12',
      boot: { method: 'pygrub' },
      defaultDiskGb: 10,
      goldenVolumes: [{ vg: 'vg0', lv: 'golden-debian12' }],
    });
    const network = await post('/v1/networks', {
      name: 'prod',
      bridge: 'xenbr0',
      cidr: '10.20.0.0/24',
      gateway: '10.20.0.1',
      rangeStart: '10.20.0.10',
      rangeEnd: '10.20.0.100',
    });
    const [owner] = await ds.query<Array<{ id: string }>>('SELECT id FROM principals LIMIT 1');
    const uow = new PgVmRequestUnitOfWork(ds);
    for (const [name, lifecycleClass, ip] of [
      ['web-1', 'cattle', '10.20.0.10'],
      ['db-1', 'pet', '10.20.0.11'],
    ] as const) {
      instances[name] = await uow.run(async (tx) => {
        const [request] = await tx.requests.insertAdmitted([
          {
            request: {
              id: randomUUID(),
              name,
              ownerId: owner!.id,
              vcpus: 1,
              memoryMb: 512,
              diskGb: 10,
              imageId: image.id as string,
              networkId: network.id as string,
              lifecycleClass,
              antiAffinityGroup: null,
              labels: { env: 'prod' },
              purpose: null,
              heartbeatTimeoutS: null,
              idempotencyKey: null,
              requestHash: null,
              history: [],
              state: 'pending_approval',
              stateReason: null,
              approvalPlan: [],
            },
            jobs: [],
            audit: [],
          },
        ]);
        const created = await tx.instanceStore.create({
          vmRequestId: request!.id,
          name,
          ownerId: owner!.id,
          hostId: host.id as string,
          domainName: name,
          lifecycleClass,
          labels: { env: 'prod' },
          heartbeatTimeoutS: null,
        });
        const running = await tx.instanceStore.update(created.id, created.version, { state: 'running', ip });
        return running!;
      });
    }
  }, 120_000);

  afterAll(async () => {
    await api?.stop();
    await ds?.destroy();
    await db?.drop();
    await fleet?.stop();
  });

  it('lists live instances and Xen hosts in their groups with hostvars; a decommission drops one', async () => {
    const before = await list();
    expect(members(before, 'xen_hosts')).toEqual(['xen-a']);
    expect(members(before, 'norm_instances')).toEqual(['db-1', 'web-1']);
    expect(members(before, 'host_xen_a')).toEqual(['db-1', 'web-1']);
    expect(members(before, 'network_prod')).toEqual(['db-1', 'web-1']);
    expect(members(before, 'image_debian_12')).toEqual(['db-1', 'web-1']);
    expect(members(before, 'lifecycle_cattle')).toEqual(['web-1']);
    expect(members(before, 'lifecycle_pet')).toEqual(['db-1']);
    expect(members(before, 'label_env_prod')).toEqual(['db-1', 'web-1']);
    expect(before._meta.hostvars['web-1']).toMatchObject({
      ansible_host: '10.20.0.10',
      norm_instance_id: instances['web-1']!.id,
      norm_host: 'xen-a',
      norm_network: 'prod',
      norm_image: 'debian-12',
      norm_lifecycle_class: 'cattle',
    });
    expect(before._meta.hostvars['xen-a']).toMatchObject({
      ansible_host: fleet.hosts[0]!.address,
      ansible_port: fleet.hosts[0]!.port,
      ansible_user: fleet.hosts[0]!.user,
    });

    await post(`/v1/instances/${instances['web-1']!.id}/actions/decommission`, {});

    const after = await list();
    expect(after._meta.hostvars['web-1']).toBeUndefined();
    for (const [group, value] of Object.entries(after)) {
      if (group === '_meta') continue;
      expect((value as { hosts?: string[] }).hosts ?? []).not.toContain('web-1');
    }
    expect(members(after, 'norm_instances')).toEqual(['db-1']);
  }, 120_000);
});
