import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostRepository } from '@norm/inventory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, freePort, startApp } from '../../harness/app-process';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { parseExposition, sample } from '../../harness/prometheus-text';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { type ApiProcess, startApi } from '../identity/api-process';

type Json = Record<string, unknown>;

const TIMEOUT_MS = 2_000;
const SECRET = 'e2e-chat-secret-0123456789';

/** One human step per timeout action, each for the requests labelled with it; all time out after 2 s. */
const policy = (hookUrl: string): string => `steps:
  - name: network
    kind: group
    groups: [network-team]
    when: {labels: {timer: expire}}
    timeout: 2s
    onTimeout: {action: expire}
  - name: nudge
    kind: group
    groups: [ops]
    when: {labels: {timer: remind}}
    timeout: 2s
    onTimeout: {action: remind}
  - name: widen
    kind: group
    groups: [ops]
    when: {labels: {timer: escalate}}
    timeout: 2s
    onTimeout: {action: escalate, groups: [leads]}
  - name: lowrisk
    kind: group
    groups: [ops]
    when: {labels: {timer: approve}}
    timeout: 2s
    onTimeout: {action: approve}
notifications:
  - name: chat
    url: ${hookUrl}
    secretEnv: NORM_E2E_CHAT_SECRET
    events: [approval.reminder, approval.escalated, vm-request.approved, vm-request.rejected]
`;

interface Hook {
  event: string;
  requestId: string;
  signed: boolean;
  at: number;
}

/**
 * Timers live in Postgres: a step whose timer passed while no worker ran acts once, when the
 * first worker starts, whatever its action; not lost, and not once per missed period.
 */
describe('approval timers across a worker restart', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let api: ApiProcess;
  let worker: AppProcess | undefined;
  let env: Record<string, string>;
  let hook: Server;
  const hooks: Hook[] = [];

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
    // The chat bridge: records each signed notification it is sent.
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers['x-norm-signature'] ?? ''));
        const signed = !!m && createHmac('sha256', SECRET).update(`${m[1]}.${body}`).digest('hex') === m[2];
        const payload = JSON.parse(body) as { event: string; request: { id: string } };
        hooks.push({ event: payload.event, requestId: payload.request.id, signed, at: Date.now() });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const dir = mkdtempSync(join(tmpdir(), 'norm-timers-e2e-'));
    const policyPath = join(dir, 'approval-policy.yaml');
    writeFileSync(policyPath, policy(`http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`));
    env = {
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_APPROVAL_POLICY: policyPath,
      NORM_APPROVAL_TIMER_INTERVAL: '200ms',
      NORM_WEBHOOK_DELIVERY_INTERVAL: '100ms',
      NORM_E2E_CHAT_SECRET: SECRET,
      NORM_WORKER_METRICS_PORT: String(await freePort()),
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
    await new Promise<void>((resolve) => hook.close(() => resolve()));
  });

  it('expire, remind, escalate and approve each act once after the restart, and notify', async () => {
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
    const ids: Record<string, string> = {};
    let lastDue = 0;
    for (const timer of ['expire', 'remind', 'escalate', 'approve']) {
      const created = await call(token, 'POST', '/v1/vm-requests', {
        name: `web-${timer}`,
        vcpus: 1,
        memoryMb: 512,
        diskGb: 2,
        imageId: image.id,
        networkId: network.id,
        lifecycleClass: 'cattle',
        labels: { timer },
      });
      expect(created.state).toBe('pending_approval');
      ids[timer] = String(created.id);
      lastDue = Math.max(lastDue, Date.parse(String((created.mustAct as Json[])[0]?.dueAt)));
    }

    // Every timer passes, and more than two more periods go by, while no worker runs.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, lastDue - Date.now()) + 2.5 * TIMEOUT_MS));
    expect((await call(token, 'GET', `/v1/vm-requests/${ids.expire}`)).state).toBe('pending_approval');
    expect(hooks).toEqual([]);

    const startedAt = Date.now();
    worker = startApp('worker', env);
    await worker.waitForLine((l) => l.msg === 'worker started');
    const get = (id: string | undefined): Promise<Json> => call(token, 'GET', `/v1/vm-requests/${id}`);
    // Each request meets only its own step; the others are skipped.
    const plan = async (timer: string): Promise<Json> =>
      ((await get(ids[timer])).approvalPlan as Json[]).find((e) => e.status !== 'skipped')!;
    await expectEventually(
      async () => {
        expect((await get(ids.expire)).state).toBe('rejected');
        expect(((await plan('remind')).detail as Json).reminders).toBeGreaterThanOrEqual(1);
        expect((await plan('escalate')).groups).toEqual(['ops', 'leads']);
        expect((await plan('approve')).status).toBe('approved');
      },
      { timeoutMs: 15_000 },
    );
    expect((await get(ids.expire)).stateReason).toBe('network: timed out');
    expect(await plan('approve')).toMatchObject({ reason: 'approved on timeout (low-risk policy)' });
    // Approved requests go on to placement and provisioning (which this worker, without SSH, cannot finish).
    expect(['approved', 'provisioning']).toContain((await get(ids.approve)).state);

    // A few more timer passes: the one-shot actions never act again, and the reminder did not
    // burst to catch up: its first firing came at the restart, the next ones a full period apart.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const counts: Array<{ action: string; n: number }> = await db.dataSource.query(
      `SELECT "action", count(*)::int AS n FROM "audit_events"
        WHERE "action" LIKE 'approval.timeout.%' GROUP BY "action" ORDER BY "action"`,
    );
    expect(counts.filter((c) => c.action !== 'approval.timeout.remind')).toEqual([
      { action: 'approval.timeout.approve', n: 1 },
      { action: 'approval.timeout.escalate', n: 1 },
      { action: 'approval.timeout.expire', n: 1 },
    ]);
    const log = ((await plan('remind')).detail as { timeoutLog: Array<{ at: string }> }).timeoutLog.map((e) =>
      Date.parse(e.at),
    );
    expect(log[0]).toBeGreaterThanOrEqual(startedAt);
    for (let i = 1; i < log.length; i++)
      expect(log[i]! - log[i - 1]!).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);

    // The bridge got each notification signed, the reminder once per firing.
    await expectEventually(
      () => {
        expect(hooks.filter((h) => h.event === 'approval.escalated').map((h) => h.requestId)).toEqual([
          ids.escalate,
        ]);
        expect(hooks.filter((h) => h.event === 'vm-request.rejected').map((h) => h.requestId)).toEqual([
          ids.expire,
        ]);
        expect(hooks.filter((h) => h.event === 'vm-request.approved').map((h) => h.requestId)).toEqual([
          ids.approve,
        ]);
      },
      { timeoutMs: 10_000 },
    );
    expect(hooks.every((h) => h.signed)).toBe(true);
    const reminders = hooks.filter((h) => h.event === 'approval.reminder');
    expect(reminders.length).toBeGreaterThanOrEqual(1);
    expect(reminders.length).toBeLessThanOrEqual(log.length);

    // The worker's own metrics listener saw it all.
    const res = await fetch(`http://127.0.0.1:${env.NORM_WORKER_METRICS_PORT}/metrics`);
    expect(res.status).toBe(200);
    const samples = parseExposition(await res.text());
    expect(sample(samples, 'norm_approval_timeouts_total', { step: 'network', action: 'expire' })).toBe(1);
    expect(sample(samples, 'norm_approval_timeouts_total', { step: 'widen', action: 'escalate' })).toBe(1);
    expect(sample(samples, 'norm_approval_timeouts_total', { step: 'lowrisk', action: 'approve' })).toBe(1);
    expect(
      sample(samples, 'norm_approval_step_duration_seconds_count', { step: 'network', outcome: 'expired' }),
    ).toBe(1);
    expect(
      sample(samples, 'norm_approval_step_duration_seconds_count', {
        step: 'lowrisk',
        outcome: 'approved_on_timeout',
      }),
    ).toBe(1);
    expect(
      sample(samples, 'norm_webhook_delivery_attempts_total', { subscription: 'chat', result: 'delivered' }),
    ).toBeGreaterThanOrEqual(4);
  }, 90_000);
});
