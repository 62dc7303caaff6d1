import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ActingContext,
  ApprovalPolicyInvalid,
  ApprovalService,
  buildChecklist,
  callbackPayload,
  checklistFromConfig,
  type Clock,
  DomainError,
  fetchWebhookPoster,
  loadConfig,
  parseApprovalPolicy,
  processCommandRunner,
  signPayload,
  type StepKindDeps,
  VmRequestService,
} from '@norm/core';
import { PgApprovalQueue, PgVmRequestUnitOfWork } from '@norm/inventory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';
import {
  aCatalogue,
  aHostRow,
  aPrincipal,
  aRequest,
  type Catalogue,
  SERVICE_OPTIONS,
} from '../vm-requests/builders';

const db = useTestDatabase();

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

let hookUrl = '';
const deps = (): StepKindDeps => ({
  quota: { perPrincipal: {}, groups: {} },
  namePattern: /^[a-z][a-z0-9-]*$/,
  webhooks: fetchWebhookPoster,
  commands: processCommandRunner,
  callbackBaseUrl: 'http://127.0.0.1:1',
  env: { HOOK_SECRET: 'hook-secret' },
});

function world(yaml: string, clock: Clock = new FakeClock()) {
  const checklist = buildChecklist(parseApprovalPolicy(yaml), deps());
  const uow = new PgVmRequestUnitOfWork(db.dataSource);
  const requests = new VmRequestService(uow, checklist.steps, clock, SERVICE_OPTIONS);
  const approvals = new ApprovalService(uow, requests, checklist, new PgApprovalQueue(db.dataSource), clock);
  return { requests, approvals };
}

async function refusal(p: Promise<unknown>): Promise<DomainError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error('expected a domain error');
}

const approver = (...groups: string[]): ActingContext => aPrincipal(['approver'], groups);
const idOf = (ctx: ActingContext): string =>
  ctx.subject.kind === 'principal' ? ctx.subject.principal.id : '';

let cat: Catalogue;
let hook: Server;
const hookCalls: string[] = [];
beforeAll(async () => {
  await aHostRow(db.dataSource);
  cat = await aCatalogue(db.dataSource);
  // The external approval system: says "pending" and decides later through the callback.
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hookCalls.push(body);
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"decision":"pending"}');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/approve`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => hook.close(() => resolve()));
});

describe('group steps on Postgres', () => {
  const policy = `
steps:
  - {name: quota, kind: quota}
  - name: network
    kind: group
    groups: [network-team, security-team]
    quorum: all
`;

  it('all-of quorum: self-approval and a second vote refused, one person in both groups counts once', async () => {
    const { requests, approvals } = world(policy);
    const owner = aPrincipal(['requester', 'approver'], ['network-team']);
    const { request } = await requests.create(owner, aRequest(cat));
    expect(request.state).toBe('pending_approval');
    expect(request.mustAct).toEqual([
      expect.objectContaining({ step: 'network', groups: ['network-team', 'security-team'], remaining: 2 }),
    ]);

    const self = await refusal(approvals.decide(owner, request.id, { step: 'network', decision: 'approve' }));
    expect(self).toMatchObject({ code: 'Forbidden', details: { reason: 'self-approval' } });
    const outsider = await refusal(
      approvals.decide(approver('dba'), request.id, { step: 'network', decision: 'approve' }),
    );
    expect(outsider.code).toBe('Forbidden');

    const both = approver('network-team', 'security-team');
    const netOnly = approver('network-team');
    expect((await approvals.inbox(both)).map((i) => i.requestId)).toContain(request.id);
    const afterBoth = await approvals.decide(both, request.id, { step: 'network', decision: 'approve' });
    expect(afterBoth.state).toBe('pending_approval');
    expect(afterBoth.mustAct[0]).toMatchObject({ remaining: 1, approvedBy: [idOf(both)] });
    expect((await approvals.inbox(both)).map((i) => i.requestId)).not.toContain(request.id);
    const twice = await refusal(approvals.decide(both, request.id, { step: 'network', decision: 'approve' }));
    expect(twice.code).toBe('Conflict');

    const done = await approvals.decide(netOnly, request.id, { step: 'network', decision: 'approve' });
    expect(done.state).toBe('approved');
    expect(
      await db.dataSource.query(`SELECT 1 FROM "outbox" WHERE "job_id" = 'VmProvision.' || $1`, [request.id]),
    ).toHaveLength(1);
    const audit: Array<{ action: string; actor: string }> = await db.dataSource.query(
      `SELECT "action", "actor" FROM "audit_events" WHERE "object_id" = $1 ORDER BY "seq"`,
      [request.id],
    );
    expect(audit.filter((a) => a.action === 'approval.vote.approve').map((a) => a.actor)).toEqual([
      idOf(both),
      idOf(netOnly),
    ]);
    const rows: Array<{ status: string; decided_by: string }> = await db.dataSource.query(
      `SELECT "status", "decided_by" FROM "approvals" WHERE "vm_request_id" = $1 AND "step_name" = 'network'`,
      [request.id],
    );
    expect(rows.map((r) => r.status)).toEqual(['approved']);
    expect(rows[0]?.decided_by.split(',').sort()).toEqual([idOf(both), idOf(netOnly)].sort());
  });

  it('two approvers at the same instant: exactly one transition', async () => {
    const { requests, approvals } = world(`
steps:
  - {name: ops, kind: group, groups: [ops]}
`);
    const { request } = await requests.create(aPrincipal(), aRequest(cat));
    const results = await Promise.allSettled([
      approvals.decide(approver('ops'), request.id, { step: 'ops', decision: 'approve' }),
      approvals.decide(approver('ops'), request.id, { step: 'ops', decision: 'approve' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected');
    expect((lost as PromiseRejectedResult).reason).toMatchObject({ code: 'InvalidTransition' });
    const after = await requests.get(approver('ops'), request.id);
    expect(after.history.filter((h) => h.to === 'approved')).toHaveLength(1);
  });

  it('cancel racing the approval: one consistent history, a job exactly when it was approved', async () => {
    const { requests, approvals } = world(`
steps:
  - {name: ops, kind: group, groups: [ops]}
`);
    for (let i = 0; i < 12; i++) {
      const owner = aPrincipal();
      const { request } = await requests.create(owner, aRequest(cat));
      expect(request.state).toBe('pending_approval');
      // Alternate who starts first, so both orders of the race are exercised.
      const cancel = () => requests.cancel(owner, request.id, 'changed my mind');
      const approve = () =>
        approvals.decide(approver('ops'), request.id, { step: 'ops', decision: 'approve' });
      const results = await Promise.allSettled(i % 2 === 0 ? [cancel(), approve()] : [approve(), cancel()]);

      const after = await requests.get(owner, request.id);
      const path = after.history.map((h) => h.to).filter((to) => to !== 'pending_approval');
      // Cancel first: approval refused. Approval first: the cancel either read it and cancels the
      // approved request (allowed until provisioning starts), or lost the version race and is refused.
      expect([['cancelled'], ['approved'], ['approved', 'cancelled']]).toContainEqual(path);
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(refused).toHaveLength(path.length === 2 ? 0 : 1);
      for (const r of refused) expect(r.reason).toMatchObject({ code: 'InvalidTransition' });

      const jobs: Array<{ n: number }> = await db.dataSource.query(
        `SELECT count(*)::int AS n FROM "outbox" WHERE "job_id" = 'VmProvision.' || $1`,
        [request.id],
      );
      // Approval enqueues in its own transaction (the job places); a request cancelled while pending has none.
      const approved = path[0] === 'approved';
      expect(jobs[0]?.n).toBe(approved ? 1 : 0);
    }
  });

  it('a rejection needs a comment and ends the request with it', async () => {
    const { requests, approvals } = world(policy);
    const { request } = await requests.create(aPrincipal(), aRequest(cat));
    const noComment = await refusal(
      approvals.decide(approver('network-team'), request.id, { step: 'network', decision: 'reject' }),
    );
    expect(noComment.code).toBe('ValidationFailed');
    const r = await approvals.decide(approver('network-team'), request.id, {
      step: 'network',
      decision: 'reject',
      comment: 'no VLAN for this',
    });
    expect(r).toMatchObject({ state: 'rejected', stateReason: 'network: no VLAN for this', mustAct: [] });
  });
});

describe('timers with a fake clock', () => {
  const policy = `
steps:
  - name: net
    kind: group
    groups: [network-team]
    timeout: 1h
    onTimeout: {action: escalate, groups: [infra-leads]}
  - name: sec
    kind: group
    groups: [security-team]
    timeout: 2h
    onTimeout: {action: expire}
`;

  it('escalates once, then the next step expires; after downtime a timer fires once', async () => {
    const clock = new FakeClock();
    const { requests, approvals } = world(policy, clock);
    const { request } = await requests.create(aPrincipal(), aRequest(cat));
    expect(request.mustAct[0]?.dueAt).toBe('2026-03-01T10:00:00.000Z');
    // Not due yet.
    clock.advance(30 * 60_000);
    expect((await approvals.fireDueTimers(clock.now())).fired).toBe(0);
    // Long downtime: one escalation, not one per missed hour.
    clock.advance(5 * 3_600_000);
    expect((await approvals.fireDueTimers(clock.now())).fired).toBe(1);
    expect((await approvals.fireDueTimers(clock.now())).fired).toBe(0);
    const escalated = await requests.get(approver('infra-leads'), request.id);
    expect(escalated.mustAct[0]).toMatchObject({ groups: ['network-team', 'infra-leads'], dueAt: null });
    expect((await approvals.inbox(approver('infra-leads'))).map((i) => i.requestId)).toContain(request.id);
    await approvals.decide(approver('infra-leads'), request.id, { step: 'net', decision: 'approve' });

    const sec = await requests.get(approver('x'), request.id);
    expect(sec.mustAct[0]).toMatchObject({
      step: 'sec',
      dueAt: new Date(clock.t.getTime() + 2 * 3_600_000).toISOString(),
    });
    clock.advance(2 * 3_600_000);
    // Two workers firing at once: one of them acts.
    const fired = await Promise.all([
      approvals.fireDueTimers(clock.now()),
      approvals.fireDueTimers(clock.now()),
    ]);
    expect(fired.reduce((n, f) => n + f.fired, 0)).toBe(1);
    const expired = await requests.get(approver('x'), request.id);
    expect(expired).toMatchObject({ state: 'rejected', stateReason: 'sec: timed out' });
  });

  it('approve-on-timeout and remind', async () => {
    const clock = new FakeClock();
    const { requests, approvals } = world(
      `
steps:
  - {name: nudge, kind: group, groups: [a], timeout: 1h, onTimeout: {action: remind}, parallel: true}
  - {name: lowrisk, kind: group, groups: [b], timeout: 1h, onTimeout: {action: approve}, parallel: true}
`,
      clock,
    );
    const { request } = await requests.create(aPrincipal(), aRequest(cat));
    clock.advance(3_600_000);
    expect((await approvals.fireDueTimers(clock.now())).fired).toBe(2);
    const r = await requests.get(approver('a'), request.id);
    expect(r.approvalPlan.map((p) => p.status)).toEqual(['pending', 'approved']);
    expect(r.approvalPlan[0]?.detail).toMatchObject({ reminders: 1, dueAt: '2026-03-01T11:00:00.000Z' });
  });
});

describe('webhook and command steps', () => {
  it('a webhook that answers pending and calls back late, authenticated by HMAC', async () => {
    const { requests, approvals } = world(`
steps:
  - name: cmdb
    kind: webhook
    url: ${hookUrl}
    secretEnv: HOOK_SECRET
`);
    const { request } = await requests.create(aPrincipal(), aRequest(cat));
    expect(request.state).toBe('pending_approval');
    // Creation only enqueued the call: no outside system is asked inside the transaction.
    const ids = () => hookCalls.map((b) => (JSON.parse(b) as { requestId: string }).requestId);
    expect(ids()).not.toContain(request.id);
    const jobs: Array<{ job_id: string }> = await db.dataSource.query(
      `SELECT "job_id" FROM "outbox" WHERE "job_id" = $1`,
      [`ApprovalStepRun.${request.id}.cmdb`],
    );
    expect(jobs).toHaveLength(1);
    // What the worker's ApprovalStepRun handler does; a second run (a retried job) asks nobody again.
    expect(await approvals.runExternalStep(request.id, 'cmdb')).toBe('recorded');
    expect(await approvals.runExternalStep(request.id, 'cmdb')).toBe('gone');
    expect(ids().filter((id) => id === request.id)).toHaveLength(1);
    expect((await requests.get(approver('x'), request.id)).mustAct[0]?.waitingOn).toMatch(
      /from 127\.0\.0\.1/,
    );
    const bad = await refusal(
      approvals.callback(request.id, 'cmdb', { decision: 'approve' }, signPayload('wrong', 'x')),
    );
    expect(bad.code).toBe('Unauthenticated');
    const sig = signPayload('hook-secret', callbackPayload(request.id, 'cmdb', 'approve', 'in CMDB'));
    const done = await approvals.callback(
      request.id,
      'cmdb',
      { decision: 'approve', reason: 'in CMDB' },
      sig,
    );
    expect(done.state).toBe('approved');
    // The far side retrying its callback is harmless.
    expect(
      (await approvals.callback(request.id, 'cmdb', { decision: 'approve', reason: 'in CMDB' }, sig)).state,
    ).toBe('approved');
  });

  it('a command that outlives its timeout is killed and rejects, its output kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'norm-cmd-'));
    const script = join(dir, 'slow.sh');
    writeFileSync(script, '#!/bin/sh\necho checking\nsleep 10\n', { mode: 0o755 });
    const { requests, approvals } = world(`
steps:
  - {name: slow, kind: command, command: ${script}, commandTimeout: 300ms}
`);
    const { request: created } = await requests.create(aPrincipal(), aRequest(cat));
    expect(created.state).toBe('pending_approval');
    const started = Date.now();
    expect(await approvals.runExternalStep(created.id, 'slow')).toBe('recorded');
    expect(Date.now() - started).toBeLessThan(5_000);
    const request = await requests.get(approver('x'), created.id);
    expect(request).toMatchObject({
      state: 'rejected',
      stateReason: `slow: ${script} timed out after 300ms`,
    });
    expect(request.approvalPlan[0]?.detail).toMatchObject({ timedOut: true, stdout: 'checking\n' });
  });
});

describe('policy file at boot', () => {
  it('a malformed file is refused with the line named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'norm-policy-'));
    const path = join(dir, 'policy.yaml');
    writeFileSync(
      path,
      'steps:\n  - name: quota\n    kind: quota\n  - name: net\n    kind: group\n    quorum: all\n',
    );
    const config = loadConfig({ NORM_APPROVAL_POLICY: path });
    let err: unknown;
    try {
      checklistFromConfig(config);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApprovalPolicyInvalid);
    expect((err as ApprovalPolicyInvalid).message).toMatch(
      new RegExp(`${path} is invalid: line 4: .*groups`),
    );
  });
});
