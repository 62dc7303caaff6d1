import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import {
  type ActingContext,
  ApprovalService,
  type Checklist,
  checklistFromConfig,
  type Clock,
  DomainError,
  fetchWebhookPoster,
  loadConfig,
  silentLogger,
  VmRequestService,
  WebhookDeliveryService,
} from '@norm/core';
import { PgApprovalQueue, PgAuditLog, PgVmRequestUnitOfWork, PgWebhookDeliveryStore } from '@norm/inventory';
import { PromMetrics } from '@norm/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../../apps/api/src/api-app';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { parseExposition, sample } from '../../harness/prometheus-text';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { aCatalogue, aHostRow, aPrincipal, aRequest, type Catalogue } from '../vm-requests/builders';

type Json = Record<string, unknown>;

const db = useTestDatabase();
const prefix = useRedisPrefix();

const SECRETS = {
  NORM_T_CHAT_SECRET: 'chat-secret-0123456789',
  NORM_T_OUTCOME_SECRET: 'outcome-secret-98765',
};
Object.assign(process.env, SECRETS);

/** Time moves only when the test says so. */
class FakeClock implements Clock {
  constructor(public t = new Date('2026-03-01T09:00:00Z')) {}
  now(): Date {
    return new Date(this.t);
  }
  sleep(): Promise<void> {
    return Promise.resolve();
  }
  advance(ms: number): void {
    this.t = new Date(this.t.getTime() + ms);
  }
}

interface Received {
  path: string;
  key: string;
  event: string;
  body: string;
  signatureOk: boolean;
  answered: number;
}

/**
 * The chat bridge and the outcome recorder: check the signature the way the README tells a
 * receiver to, and fail the first two attempts of every delivery (by its Idempotency-Key).
 */
function receiver(received: Received[]): Server {
  const seen = new Map<string, number>();
  return createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const secret = req.url === '/chat' ? SECRETS.NORM_T_CHAT_SECRET : SECRETS.NORM_T_OUTCOME_SECRET;
      const sig = String(req.headers['x-norm-signature'] ?? '');
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig);
      const want = m ? createHmac('sha256', secret).update(`${m[1]}.${body}`).digest() : Buffer.alloc(32);
      const signatureOk = !!m && timingSafeEqual(want, Buffer.from(m[2]!, 'hex'));
      const key = String(req.headers['idempotency-key'] ?? '');
      const n = (seen.get(key) ?? 0) + 1;
      seen.set(key, n);
      const answered = !signatureOk ? 401 : n <= 2 ? 503 : 204;
      received.push({
        path: req.url ?? '',
        key,
        event: String(req.headers['x-norm-event'] ?? ''),
        body,
        signatureOk,
        answered,
      });
      res.writeHead(answered).end(answered === 503 ? 'busy, try later' : '');
    });
  });
}

let cat: Catalogue;
let policyPath: string;
let hook: Server;
const received: Received[] = [];
let app: NestFastifyApplication;
let admin: string;

const OPTIONS = {
  bounds: { maxVcpus: 16, minMemoryMb: 128, maxMemoryMb: 65_536, maxDiskGb: 500 },
  placement: {
    strategy: 'spread' as const,
    dom0ReserveMb: 1024,
    vcpuOvercommitRatio: 4,
    antiAffinityMode: 'hard' as const,
  },
};

function world(clock: FakeClock, policy = policyPath) {
  const checklist: Checklist = checklistFromConfig(loadConfig({ NORM_APPROVAL_POLICY: policy }), {}, SECRETS);
  const metrics = new PromMetrics();
  const uow = new PgVmRequestUnitOfWork(db.dataSource);
  const requests = new VmRequestService(uow, checklist.steps, clock, OPTIONS, {
    subscriptions: checklist.subscriptions,
    metrics,
  });
  const approvals = new ApprovalService(
    uow,
    requests,
    checklist,
    new PgApprovalQueue(db.dataSource),
    clock,
    metrics,
  );
  const sender = new WebhookDeliveryService(
    {
      store: new PgWebhookDeliveryStore(db.dataSource),
      subscriptions: checklist.subscriptions,
      http: fetchWebhookPoster,
      clock,
      log: silentLogger,
      audit: (event) => PgAuditLog.appendAlone(db.dataSource, event),
      metrics,
    },
    { timeoutMs: 2_000, maxAttempts: 5, baseBackoffMs: 10_000, maxBackoffMs: 3_600_000 },
  );
  return { uow, requests, approvals, sender, metrics };
}

const call = async (
  token: string | undefined,
  method: 'GET' | 'POST',
  url: string,
  payload?: unknown,
): Promise<{ status: number; body: Json; text: string; type: string }> => {
  const res = await app.inject({
    method,
    url,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    ...(payload === undefined ? {} : { payload: payload as Json }),
  });
  const text = res.body;
  let body: Json = {};
  try {
    body = JSON.parse(text) as Json;
  } catch {
    // the exposition is text
  }
  return { status: res.statusCode, body, text, type: String(res.headers['content-type'] ?? '') };
};

const tokenFor = async (name: string, roles: string[], groups: string[] = []): Promise<string> => {
  const p = await call(admin, 'POST', '/v1/principals', { kind: 'person', name, roles, groups });
  const t = await call(admin, 'POST', `/v1/principals/${String(p.body.id)}/tokens`, { name: 'cli' });
  return String(t.body.token);
};

const approver = (...groups: string[]): ActingContext => aPrincipal(['approver'], groups);

async function log(token: string, query: string): Promise<Json[]> {
  const res = await call(token, 'GET', `/v1/webhooks/deliveries?${query}`);
  expect(res.status).toBe(200);
  return res.body.items as Json[];
}

beforeAll(async () => {
  hook = receiver(received);
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), 'norm-notify-'));
  policyPath = join(dir, 'approval-policy.yaml');
  writeFileSync(
    policyPath,
    `steps:
  - {name: quota, kind: quota}
  - name: net
    kind: group
    groups: [network-team]
    parallel: true
    timeout: 1h
    onTimeout: {action: remind}
  - name: sec
    kind: group
    groups: [security-team]
    parallel: true
    timeout: 1h
    onTimeout: {action: escalate, groups: [infra-leads]}
notifications:
  - name: chat
    url: ${base}/chat
    secretEnv: NORM_T_CHAT_SECRET
  - name: outcomes
    url: ${base}/outcomes
    secretEnv: NORM_T_OUTCOME_SECRET
    events: [vm-request.approved, vm-request.rejected]
`,
  );
  const config = loadConfig({
    DATABASE_URL: db.url,
    REDIS_URL,
    NORM_REDIS_PREFIX: prefix,
    NORM_STATE_DIR: dir,
    NORM_LOG_LEVEL: 'silent',
    NORM_APPROVAL_POLICY: policyPath,
  });
  app = await createApiApp({ config });
  await app.init();
  admin = await expectEventually(() => readFileSync(join(dir, 'admin-token'), 'utf8').trim());
  await aHostRow(db.dataSource);
  cat = await aCatalogue(db.dataSource);
});
afterAll(async () => {
  await app?.close();
  await new Promise<void>((resolve) => hook.close(() => resolve()));
});

describe('approval notifications', () => {
  const clock = new FakeClock();
  let w: ReturnType<typeof world>;
  let approvedId = '';
  let rejectedId = '';

  it('records every event kind with the change that caused it, for the subscriptions that want it', async () => {
    w = world(clock);
    const created = await w.requests.create(aPrincipal(), aRequest(cat));
    approvedId = created.request.id;
    clock.advance(3_600_000);
    expect((await w.approvals.fireDueTimers(clock.now())).fired).toBe(2);
    // A refused vote rolls back and records nothing.
    const before = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM "webhook_deliveries"`,
    );
    await expect(
      w.approvals.decide(approver('dba'), approvedId, { step: 'net', decision: 'approve' }),
    ).rejects.toBeInstanceOf(DomainError);
    expect(
      await db.dataSource.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM "webhook_deliveries"`),
    ).toEqual(before);
    await w.approvals.decide(approver('network-team'), approvedId, { step: 'net', decision: 'approve' });
    const done = await w.approvals.decide(approver('infra-leads'), approvedId, {
      step: 'sec',
      decision: 'approve',
      comment: 'escalated and fine',
    });
    expect(done.state).toBe('approved');
    const other = await w.requests.create(aPrincipal(), aRequest(cat));
    rejectedId = other.request.id;
    await w.approvals.decide(approver('network-team'), rejectedId, {
      step: 'net',
      decision: 'reject',
      comment: 'no VLAN',
    });

    const ops = await tokenFor('olga', ['operator']);
    const events = async (request: string, subscription: string): Promise<string[]> =>
      (await log(ops, `request=${request}&subscription=${subscription}&limit=200`))
        .map((d) => String(d.event))
        .sort();
    expect(await events(approvedId, 'chat')).toEqual([
      'approval.decision',
      'approval.decision',
      'approval.escalated',
      'approval.pending',
      'approval.pending',
      'approval.reminder',
      'vm-request.approved',
    ]);
    expect(await events(approvedId, 'outcomes')).toEqual(['vm-request.approved']);
    expect(await events(rejectedId, 'outcomes')).toEqual(['vm-request.rejected']);
    const [escalation] = await log(ops, `request=${approvedId}&event=approval.escalated`);
    expect(escalation).toMatchObject({
      status: 'pending',
      attempts: 0,
      lastStatus: null,
      subscription: 'chat',
    });
    expect(escalation?.payload).toMatchObject({
      event: 'approval.escalated',
      request: { id: approvedId, state: 'pending_approval', lifecycleClass: 'cattle' },
      step: { name: 'sec', groups: ['security-team', 'infra-leads'] },
      addedGroups: ['infra-leads'],
    });
    const [rejection] = await log(ops, `request=${rejectedId}&event=approval.decision`);
    expect((rejection?.payload as Json).text).toMatch(/: net rejected by .*: no VLAN$/);

    // Paging: newest first, the cursor continues where the page ended, nothing twice.
    const first = await call(ops, 'GET', `/v1/webhooks/deliveries?limit=3`);
    const second = await call(
      ops,
      'GET',
      `/v1/webhooks/deliveries?limit=3&cursor=${String(first.body.nextCursor)}`,
    );
    const ids = [...(first.body.items as Json[]), ...(second.body.items as Json[])].map((d) => d.id);
    expect(new Set(ids).size).toBe(6);
    // Permission-checked, and bad filters are a 400.
    const alice = await tokenFor('alice', ['requester']);
    expect((await call(alice, 'GET', '/v1/webhooks/deliveries')).status).toBe(403);
    expect((await call(undefined, 'GET', '/v1/webhooks/deliveries')).status).toBe(401);
    expect((await call(ops, 'GET', '/v1/webhooks/deliveries?status=lost')).status).toBe(400);
    expect((await call(ops, 'GET', '/v1/webhooks/deliveries?colour=red')).status).toBe(400);
  });

  it('sends them signed, retries a receiver that fails twice with backoff, and the log shows the attempts', async () => {
    const total = (
      await db.dataSource.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM "webhook_deliveries"`)
    )[0]!.n;
    // 7 + 1 for the approved request, 4 + 1 for the rejected one.
    expect(total).toBe(13);
    expect(await w.sender.runDue(100)).toEqual({ attempted: total, delivered: 0 });
    // Not due again before the backoff.
    expect(await w.sender.runDue(100)).toEqual({ attempted: 0, delivered: 0 });
    clock.advance(10_000);
    expect(await w.sender.runDue(100)).toEqual({ attempted: total, delivered: 0 });
    clock.advance(10_000);
    expect((await w.sender.runDue(100)).attempted).toBe(0);
    clock.advance(10_000);
    expect(await w.sender.runDue(100)).toEqual({ attempted: total, delivered: total });

    expect(received).toHaveLength(3 * total);
    expect(received.every((r) => r.signatureOk)).toBe(true);
    const byKey = new Map<string, Received[]>();
    for (const r of received) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r]);
    expect(byKey.size).toBe(total);
    for (const tries of byKey.values()) {
      // Same bytes every time, and the event header matches the body.
      expect(tries.map((t) => t.answered)).toEqual([503, 503, 204]);
      expect(new Set(tries.map((t) => t.body)).size).toBe(1);
      expect((JSON.parse(tries[0]!.body) as Json).event).toBe(tries[0]!.event);
    }
    expect(
      received
        .filter((r) => r.path === '/outcomes')
        .map((r) => r.event)
        .sort(),
    ).toEqual([
      ...Array<string>(3).fill('vm-request.approved'),
      ...Array<string>(3).fill('vm-request.rejected'),
    ]);

    const ops = await tokenFor('oscar', ['operator']);
    const rows = await log(ops, `request=${approvedId}&subscription=chat&limit=200`);
    expect(rows).toHaveLength(7);
    for (const r of rows)
      expect(r).toMatchObject({
        status: 'delivered',
        attempts: 3,
        lastStatus: 204,
        lastError: null,
        nextAttemptAt: null,
        lastAttemptAt: clock.now().toISOString(),
      });
    const samples = parseExposition((await w.metrics.exposition()).body);
    expect(
      sample(samples, 'norm_webhook_delivery_attempts_total', { subscription: 'chat', result: 'retry' }),
    ).toBe(2 * 11);
    expect(
      sample(samples, 'norm_webhook_delivery_attempts_total', {
        subscription: 'outcomes',
        result: 'delivered',
      }),
    ).toBe(2);
  });

  it('a delivery that keeps failing is given up after its last attempt, and an operator can resend it', async () => {
    const gone = new WebhookDeliveryService(
      {
        store: new PgWebhookDeliveryStore(db.dataSource),
        subscriptions: [{ name: 'chat', url: 'http://127.0.0.1:1/closed', secret: 'x', events: new Set() }],
        http: fetchWebhookPoster,
        clock,
        log: silentLogger,
        audit: () => Promise.resolve(),
      },
      { timeoutMs: 1_000, maxAttempts: 2, baseBackoffMs: 1_000, maxBackoffMs: 1_000 },
    );
    const created = await w.requests.create(aPrincipal(), aRequest(cat));
    const rows = await db.dataSource.query<Array<{ id: string }>>(
      `SELECT "id" FROM "webhook_deliveries" WHERE "vm_request_id" = $1 AND "subscription" = 'chat'`,
      [created.request.id],
    );
    expect(rows).toHaveLength(2);
    await gone.runDue(100);
    clock.advance(1_000);
    await gone.runDue(100);
    const ops = await tokenFor('otto', ['operator']);
    const failed = await log(ops, `request=${created.request.id}&status=failed`);
    expect(failed).toHaveLength(2);
    expect(failed[0]).toMatchObject({ attempts: 2, lastStatus: null, nextAttemptAt: null });
    expect(String(failed[0]?.lastError)).toMatch(/fetch failed|ECONNREFUSED/);
    // The API's sender has the real subscription: the receiver (now past its two failures per key) takes it.
    const id = String(failed[0]?.id);
    const viewer = await tokenFor('vera', ['viewer']);
    expect((await call(viewer, 'POST', `/v1/webhooks/deliveries/${id}/actions/retry`)).status).toBe(403);
    const first = await call(ops, 'POST', `/v1/webhooks/deliveries/${id}/actions/retry`);
    // Attempts remain under the API's cap (NORM_WEBHOOK_MAX_ATTEMPTS): a failed resend is retried with backoff.
    expect(first.body).toMatchObject({ status: 'retrying', attempts: 3, lastStatus: 503 });
    await call(ops, 'POST', `/v1/webhooks/deliveries/${id}/actions/retry`);
    const third = await call(ops, 'POST', `/v1/webhooks/deliveries/${id}/actions/retry`);
    expect(third.body).toMatchObject({ status: 'delivered', attempts: 5, lastStatus: 204 });
    expect(
      (await call(ops, 'POST', `/v1/webhooks/deliveries/${created.request.id}/actions/retry`)).status,
    ).toBe(404);
  });
});

describe('metrics', () => {
  it('step durations, timers and request-to-running, observed only once the change committed', async () => {
    // Its own step names: timers fire for every request, and only this checklist knows these steps.
    const path = join(mkdtempSync(join(tmpdir(), 'norm-metrics-')), 'policy.yaml');
    writeFileSync(
      path,
      `steps:
  - {name: quota, kind: quota}
  - {name: m-net, kind: group, groups: [network-team], parallel: true, timeout: 1h, onTimeout: {action: remind}}
  - name: m-sec
    kind: group
    groups: [security-team]
    parallel: true
    timeout: 1h
    onTimeout: {action: escalate, groups: [infra-leads]}
`,
    );
    // Request-to-running starts at the row's created_at, which Postgres stamps: start from real time.
    const clock = new FakeClock(new Date());
    const w = world(clock, path);
    const { request } = await w.requests.create(aPrincipal(), aRequest(cat));
    clock.advance(2 * 3_600_000);
    await w.approvals.fireDueTimers(clock.now());
    await w.approvals.decide(approver('network-team'), request.id, { step: 'm-net', decision: 'approve' });
    clock.advance(30 * 60_000);
    await w.approvals.decide(approver('security-team'), request.id, { step: 'm-sec', decision: 'approve' });
    clock.advance(60_000);
    const toState = (to: 'provisioning' | 'running', fail = false): Promise<void> =>
      w.uow.run(async (tx) => {
        const r = (await tx.requests.get(request.id))!;
        await w.requests.transition(tx, r, to, 'test', null);
        if (fail) throw new Error('rolled back');
      });
    await toState('provisioning');
    await expect(toState('running', true)).rejects.toThrow('rolled back');
    let samples = parseExposition((await w.metrics.exposition()).body);
    expect(
      sample(samples, 'norm_request_to_running_seconds_count', { lifecycle_class: 'cattle' }),
    ).toBeUndefined();
    await toState('running');

    samples = parseExposition((await w.metrics.exposition()).body);
    const step = (name: string, outcome: string, what: 'count' | 'sum'): number | undefined =>
      sample(samples, `norm_approval_step_duration_seconds_${what}`, { step: name, outcome });
    expect(step('quota', 'approved', 'count')).toBe(1);
    expect(step('quota', 'approved', 'sum')).toBe(0);
    expect(step('m-net', 'approved', 'sum')).toBe(7_200);
    expect(step('m-sec', 'approved', 'sum')).toBe(9_000);
    expect(
      sample(samples, 'norm_approval_step_duration_seconds_bucket', {
        step: 'm-sec',
        outcome: 'approved',
        le: '14400',
      }),
    ).toBe(1);
    expect(
      sample(samples, 'norm_approval_step_duration_seconds_bucket', {
        step: 'm-sec',
        outcome: 'approved',
        le: '3600',
      }),
    ).toBe(0);
    expect(sample(samples, 'norm_approval_timeouts_total', { step: 'm-net', action: 'remind' })).toBe(1);
    expect(sample(samples, 'norm_approval_timeouts_total', { step: 'm-sec', action: 'escalate' })).toBe(1);
    expect(sample(samples, 'norm_request_to_running_seconds_count', { lifecycle_class: 'cattle' })).toBe(1);
    // 2 h 31 min of fake time, plus the few real milliseconds between the INSERT and the clock's start.
    const running =
      sample(samples, 'norm_request_to_running_seconds_sum', { lifecycle_class: 'cattle' }) ?? 0;
    expect(running).toBeGreaterThanOrEqual(9_059);
    expect(running).toBeLessThan(9_070);
  });

  it('GET /metrics: a token with metrics:read, the exposition format, the backlog and the API-side decisions', async () => {
    expect((await call(undefined, 'GET', '/metrics')).status).toBe(401);
    const requester = await tokenFor('rita', ['requester']);
    expect((await call(requester, 'GET', '/metrics')).status).toBe(403);
    const nina = await tokenFor('nina', ['approver'], ['network-team']);
    const created = await call(requester, 'POST', '/v1/vm-requests', {
      ...aRequest(cat),
      name: 'metrics-1',
    });
    expect(created.status).toBe(201);
    const prometheus = await tokenFor('prometheus', ['viewer']);
    const scrape = async () => {
      const res = await call(prometheus, 'GET', '/metrics');
      expect(res.status).toBe(200);
      expect(res.type).toBe('text/plain; version=0.0.4; charset=utf-8');
      return parseExposition(res.text);
    };
    let samples = await scrape();
    expect(sample(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(samples, 'norm_approval_steps_waiting', { step: 'net' })).toBeGreaterThanOrEqual(1);
    expect(sample(samples, 'norm_approval_oldest_wait_seconds', { step: 'sec' })).toBeGreaterThanOrEqual(0);
    expect(
      sample(samples, 'norm_approval_step_duration_seconds_count', { step: 'net', outcome: 'approved' }),
    ).toBe(undefined);
    const voted = await call(nina, 'POST', `/v1/vm-requests/${String(created.body.id)}/approvals`, {
      step: 'net',
      decision: 'approve',
    });
    expect(voted.status).toBe(200);
    samples = await scrape();
    expect(
      sample(samples, 'norm_approval_step_duration_seconds_count', { step: 'net', outcome: 'approved' }),
    ).toBe(1);
  });
});
