import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostRepository } from '@norm/inventory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, startApp } from '../../harness/app-process';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { type ApiProcess, startApi } from '../identity/api-process';

type Json = Record<string, unknown>;

/** A step that expires after two seconds without a decision. */
const POLICY = `steps:
  - name: network
    kind: group
    groups: [network-team]
    timeout: 2s
    onTimeout:
      action: expire
`;

/**
 * Timers live in Postgres: a request whose step timed out while no worker ran is expired once
 * by the first worker that starts, not lost and not expired twice.
 */
describe('approval timers across a worker restart', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let api: ApiProcess;
  let worker: AppProcess | undefined;
  let env: Record<string, string>;

  const call = async (token: string, method: string, path: string, body?: unknown): Promise<Json> => {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return (await res.json()) as Json;
  };

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'norm-timers-e2e-'));
    const policyPath = join(dir, 'approval-policy.yaml');
    writeFileSync(policyPath, POLICY);
    env = {
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_APPROVAL_POLICY: policyPath,
      NORM_APPROVAL_TIMER_INTERVAL: '200ms',
    };
    await new HostRepository(db.dataSource.manager).create(
      {
        name: 'xen-a',
        address: '127.0.0.1',
        port: 1,
        sshUser: 'norm',
        sudo: false,
        hostKeyFingerprint: 'SHA256:' + 'A'.repeat(43),
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
    api = await startApi(env);
  }, 60_000);

  afterAll(async () => {
    await worker?.stop('SIGTERM');
    await api?.stop();
  });

  it('expires once, after the restart, with the reason "timed out"', async () => {
    const admin = readFileSync(join(api.stateDir, 'admin-token'), 'utf8').trim();
    const image = await call(admin, 'POST', '/v1/images', {
      name: 'centos7',
      osLabel: 'CentOS 7',
      boot: { method: 'pygrub' },
      defaultDiskGb: 1,
      goldenVolumes: [{ vg: 'vg0', lv: 'golden-tiny' }],
    });
    const network = await call(admin, 'POST', '/v1/networks', {
      name: 'lab',
      bridge: 'xenbr0',
      cidr: '10.79.0.0/24',
      gateway: '10.79.0.1',
      rangeStart: '10.79.0.10',
      rangeEnd: '10.79.0.200',
    });
    const p = await call(admin, 'POST', '/v1/principals', {
      kind: 'person',
      name: 'dora',
      roles: ['requester'],
    });
    const token = String(
      (await call(admin, 'POST', `/v1/principals/${String(p.id)}/tokens`, { name: 'cli' })).token,
    );
    const created = await call(token, 'POST', '/v1/vm-requests', {
      name: 'web-9',
      vcpus: 1,
      memoryMb: 512,
      diskGb: 2,
      imageId: image.id,
      networkId: network.id,
      lifecycleClass: 'cattle',
    });
    expect(created.state).toBe('pending_approval');
    const id = String(created.id);
    const dueAt = String((created.mustAct as Json[])[0]?.dueAt);

    // The timer passes while no worker runs.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(dueAt) - Date.now()) + 500));
    expect((await call(token, 'GET', `/v1/vm-requests/${id}`)).state).toBe('pending_approval');

    worker = startApp('worker', env);
    await worker.waitForLine((l) => l.msg === 'worker started');
    const done = await expectEventually(
      async () => {
        const r = await call(token, 'GET', `/v1/vm-requests/${id}`);
        expect(r.state).toBe('rejected');
        return r;
      },
      { timeoutMs: 15_000 },
    );
    expect(done.stateReason).toBe('network: timed out');
    // A few more timer passes: still one expiry in the audit.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const events: Array<{ n: number }> = await db.dataSource.query(
      `SELECT count(*)::int AS n FROM "audit_events" WHERE "object_id" = $1 AND "action" = 'approval.timeout.expire'`,
      [id],
    );
    expect(events[0]?.n).toBe(1);
  }, 60_000);
});
