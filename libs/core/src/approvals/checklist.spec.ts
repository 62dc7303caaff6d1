import { describe, expect, it } from 'vitest';
import {
  type ApprovalContext,
  type ApprovalSubject,
  evaluatePipeline,
  type PlanEntry,
} from '../vm-requests/approval-pipeline';
import { parseApprovalPolicy } from './approval-policy';
import { type Vote } from './quorum';
import { matchCondition } from './step-condition';
import { buildChecklist, type StepKindDeps } from './step-kinds';
import { callbackPayload, type CommandResult, signPayload, verifySignature } from './step-runners';
import { whoMustAct } from './who-must-act';

const subject = (over: Partial<ApprovalSubject> = {}): ApprovalSubject => ({
  id: 'r1',
  name: 'web-1',
  ownerId: 'owner',
  ownerGroups: [],
  vcpus: 2,
  memoryMb: 2048,
  diskGb: 10,
  lifecycleClass: 'cattle',
  labels: {},
  imageId: 'img-1',
  imageName: 'centos-7',
  networkId: 'net-1',
  networkName: 'shared',
  ...over,
});

const ctx: ApprovalContext = { usage: () => Promise.resolve({ instances: 0, vcpus: 0, memoryMb: 0 }) };
const now = new Date('2026-01-01T00:00:00Z');

function deps(over: Partial<StepKindDeps> = {}): StepKindDeps {
  return {
    quota: { perPrincipal: {}, groups: {} },
    namePattern: /^[a-z][a-z0-9-]*$/,
    webhooks: { post: () => Promise.reject(new Error('unexpected webhook')) },
    commands: { run: () => Promise.reject(new Error('unexpected command')) },
    callbackBaseUrl: 'https://norm.example',
    env: { HOOK_SECRET: 'k' },
    ...over,
  };
}

const checklist = (yaml: string, d = deps()) => buildChecklist(parseApprovalPolicy(yaml), d).steps;

const vote = (
  by: string,
  groups: string[],
  decision: Vote['decision'] = 'approve',
  comment: string | null = null,
) => ({
  by,
  decision,
  groups,
  at: now.toISOString(),
  comment,
});

function withVotes(plan: PlanEntry[], step: string, votes: Vote[]): PlanEntry[] {
  return plan.map((p) => (p.step === step ? { ...p, detail: { ...p.detail, votes } } : p));
}

describe('step conditions', () => {
  it('matches every kind of condition and says why not', () => {
    const s = subject({ labels: { environment: 'production', team: 'pay' }, lifecycleClass: 'pet' });
    expect(matchCondition({ environment: ['production'] }, s).applies).toBe(true);
    expect(matchCondition({ environment: ['staging'] }, s)).toEqual({
      applies: false,
      why: 'environment production is not staging',
    });
    expect(matchCondition({ lifecycleClass: ['cattle'] }, s).why).toBe('lifecycle class pet is not cattle');
    expect(matchCondition({ sizeAbove: { vcpus: 1 } }, s).applies).toBe(true);
    expect(matchCondition({ sizeAbove: { vcpus: 4, memoryMb: 4096 } }, s).applies).toBe(false);
    expect(matchCondition({ network: ['shared'] }, s).applies).toBe(true);
    expect(matchCondition({ network: ['net-1'] }, s).applies).toBe(true);
    expect(matchCondition({ network: ['dmz'] }, s).applies).toBe(false);
    expect(matchCondition({ image: ['centos-7'] }, s).applies).toBe(true);
    expect(matchCondition({ image: ['windows'] }, s).applies).toBe(false);
    expect(matchCondition({ labels: { team: ['pay', 'ops'] } }, s).applies).toBe(true);
    expect(matchCondition({ labels: { team: 'ops' } }, s).why).toBe('label team=pay is not ops');
    expect(matchCondition({ environment: ['production'], lifecycleClass: ['cattle'] }, s).applies).toBe(
      false,
    );
  });
});

describe('checklist in the pipeline', () => {
  const policy = `
steps:
  - {name: quota, kind: quota}
  - name: network
    kind: group
    groups: [network-team]
    parallel: true
  - name: security
    kind: group
    groups: [security]
    when: {lifecycleClass: [pet]}
    parallel: true
    timeout: 1h
    onTimeout: {action: expire}
  - {name: capacity, kind: capacity}
`;

  it('records non-matching steps as skipped and asks parallel steps together', async () => {
    const steps = checklist(policy);
    const cattle = await evaluatePipeline(steps, subject(), ctx, now);
    expect(cattle.plan.map((p) => [p.step, p.status])).toEqual([
      ['quota', 'approved'],
      ['network', 'pending'],
      ['security', 'skipped'],
      ['capacity', 'not_reached'],
    ]);
    expect(cattle.plan[2]?.reason).toBe('lifecycle class cattle is not pet');

    const pet = await evaluatePipeline(steps, subject({ lifecycleClass: 'pet' }), ctx, now);
    expect(pet.plan.map((p) => p.status)).toEqual(['approved', 'pending', 'pending', 'not_reached']);
    expect(pet.plan[2]?.detail).toMatchObject({
      pendingSince: now.toISOString(),
      dueAt: '2026-01-01T01:00:00.000Z',
    });
    expect(whoMustAct(pet.plan).map((m) => [m.step, m.groups, m.dueAt])).toEqual([
      ['network', ['network-team'], null],
      ['security', ['security'], '2026-01-01T01:00:00.000Z'],
    ]);

    // Security decides first (parallel), then network; the kept decisions are not asked again.
    const later = new Date(now.getTime() + 60_000);
    const afterSec = await evaluatePipeline(
      steps,
      subject({ lifecycleClass: 'pet' }),
      { ...ctx, previousPlan: withVotes(pet.plan, 'security', [vote('s1', ['security'])]) },
      later,
    );
    expect(afterSec.plan.map((p) => p.status)).toEqual(['approved', 'pending', 'approved', 'not_reached']);
    const done = await evaluatePipeline(
      steps,
      subject({ lifecycleClass: 'pet' }),
      { ...ctx, previousPlan: withVotes(afterSec.plan, 'network', [vote('n1', ['network-team'])]) },
      later,
    );
    expect(done.outcome).toBe('approved');
    expect(done.plan[3]).toMatchObject({ step: 'capacity', status: 'approved' });
  });

  it('a rejection vote ends the request with its comment; the requester cannot approve their own', async () => {
    const steps = checklist(policy);
    const first = await evaluatePipeline(steps, subject(), ctx, now);
    const self = await evaluatePipeline(
      steps,
      subject(),
      { ...ctx, previousPlan: withVotes(first.plan, 'network', [vote('owner', ['network-team'])]) },
      now,
    );
    expect(self.outcome).toBe('pending');
    const rejected = await evaluatePipeline(
      steps,
      subject(),
      {
        ...ctx,
        previousPlan: withVotes(first.plan, 'network', [
          vote('n1', ['network-team'], 'reject', 'no VLAN for that'),
        ]),
      },
      now,
    );
    expect(rejected).toMatchObject({ outcome: 'rejected', reason: 'network: no VLAN for that' });
  });

  it('a fired timer decides the step (expire rejects "timed out", approve approves)', async () => {
    const steps = checklist(policy);
    const pet = await evaluatePipeline(steps, subject({ lifecycleClass: 'pet' }), ctx, now);
    const fired = pet.plan.map((p) =>
      p.step === 'security' ? { ...p, detail: { ...p.detail, timeoutFired: 'expire', dueAt: null } } : p,
    );
    const out = await evaluatePipeline(
      steps,
      subject({ lifecycleClass: 'pet' }),
      { ...ctx, previousPlan: fired },
      now,
    );
    expect(out).toMatchObject({ outcome: 'rejected', reason: 'security: timed out' });
  });

  it('capacity rejects early when placement cannot fit', async () => {
    const steps = checklist('steps:\n  - {name: capacity, kind: capacity}\n');
    const out = await evaluatePipeline(
      steps,
      subject(),
      {
        ...ctx,
        fits: () => Promise.resolve({ fits: false, reason: 'no host has 2048 MiB free', detail: {} }),
      },
      now,
    );
    expect(out).toMatchObject({ outcome: 'rejected', reason: 'capacity: no host has 2048 MiB free' });
  });
});

describe('webhook step', () => {
  const yaml = `
steps:
  - name: cmdb
    kind: webhook
    url: https://cmdb.example/approve
    secretEnv: HOOK_SECRET
`;

  it('posts the request signed with the HMAC, and a later callback decides it without a second POST', async () => {
    const calls: Array<{ body: string; sig: string | undefined }> = [];
    const steps = checklist(
      yaml,
      deps({
        webhooks: {
          post: (_url, body, headers) => {
            calls.push({ body, sig: headers['x-norm-signature'] });
            return Promise.resolve({ status: 202, body: '{"decision":"pending"}' });
          },
        },
      }),
    );
    const first = await evaluatePipeline(steps, subject(), ctx, now);
    expect(first.outcome).toBe('pending');
    expect(calls).toHaveLength(1);
    expect(verifySignature('k', calls[0]?.body ?? '', calls[0]?.sig ?? '')).toBe(true);
    expect(JSON.parse(calls[0]?.body ?? '{}')).toMatchObject({
      requestId: 'r1',
      callbackUrl: 'https://norm.example/v1/approvals/callbacks/r1/cmdb',
    });
    const again = await evaluatePipeline(steps, subject(), { ...ctx, previousPlan: first.plan }, now);
    expect(again.outcome).toBe('pending');
    expect(calls).toHaveLength(1);
    const called = first.plan.map((p) => ({
      ...p,
      detail: { ...p.detail, callback: { decision: 'reject', reason: 'not in CMDB' } },
    }));
    const out = await evaluatePipeline(steps, subject(), { ...ctx, previousPlan: called }, now);
    expect(out).toMatchObject({ outcome: 'rejected', reason: 'cmdb: not in CMDB' });
  });

  it('with defer (inside the request transaction) it only schedules the call, once', async () => {
    const steps = checklist(yaml, deps());
    const deferred: string[] = [];
    const defer = (step: string) => {
      deferred.push(step);
      return Promise.resolve();
    };
    const first = await evaluatePipeline(steps, subject(), { ...ctx, defer }, now);
    expect(first.plan[0]).toMatchObject({ status: 'pending', detail: { dispatchedAt: now.toISOString() } });
    await evaluatePipeline(steps, subject(), { ...ctx, defer, previousPlan: first.plan }, now);
    expect(deferred).toEqual(['cmdb']);
    const answered = first.plan.map((p) => ({
      ...p,
      detail: { ...p.detail, result: { decision: 'approve', reason: 'known host' } },
    }));
    expect(
      (await evaluatePipeline(steps, subject(), { ...ctx, defer, previousPlan: answered }, now)).outcome,
    ).toBe('approved');
  });

  it('a failing webhook rejects by default, saying why', async () => {
    const steps = checklist(
      yaml,
      deps({ webhooks: { post: () => Promise.resolve({ status: 500, body: 'boom' }) } }),
    );
    expect(await evaluatePipeline(steps, subject(), ctx, now)).toMatchObject({
      outcome: 'rejected',
      reason: 'cmdb: webhook failed: HTTP 500',
    });
  });

  it('signs callbacks over request, step, decision and reason', () => {
    const sig = signPayload('k', callbackPayload('r1', 'cmdb', 'approve', null));
    expect(verifySignature('k', callbackPayload('r1', 'cmdb', 'approve', undefined), sig)).toBe(true);
    expect(verifySignature('k', callbackPayload('r2', 'cmdb', 'approve', null), sig)).toBe(false);
    expect(verifySignature('other', callbackPayload('r1', 'cmdb', 'approve', null), sig)).toBe(false);
  });
});

describe('command step', () => {
  const run = (result: CommandResult) => {
    const seen: string[] = [];
    const steps = checklist(
      'steps:\n  - {name: lic, kind: command, command: /bin/check, args: [-q], commandTimeout: 2s}\n',
      deps({
        commands: {
          run: (_c, _a, stdin, timeoutMs) => {
            seen.push(stdin, String(timeoutMs));
            return Promise.resolve(result);
          },
        },
      }),
    );
    return { steps, seen };
  };

  it('exit 0 approves with the first stdout line; the request arrives as JSON on stdin', async () => {
    const { steps, seen } = run({ exitCode: 0, stdout: 'licensed\nmore', stderr: '', timedOut: false });
    const out = await evaluatePipeline(steps, subject(), ctx, now);
    expect(out.plan[0]).toMatchObject({ status: 'approved', reason: 'licensed', detail: { exitCode: 0 } });
    expect(JSON.parse(seen[0] ?? '{}')).toMatchObject({ requestId: 'r1', request: { name: 'web-1' } });
    expect(seen[1]).toBe('2000');
  });

  it('non-zero rejects; JSON on stdout wins; a timeout rejects and records the output', async () => {
    expect(
      (
        await evaluatePipeline(
          run({ exitCode: 2, stdout: 'no seats', stderr: '', timedOut: false }).steps,
          subject(),
          ctx,
          now,
        )
      ).reason,
    ).toBe('lic: no seats');
    expect(
      (
        await evaluatePipeline(
          run({ exitCode: 1, stdout: '{"decision":"approve","reason":"fine"}', stderr: '', timedOut: false })
            .steps,
          subject(),
          ctx,
          now,
        )
      ).outcome,
    ).toBe('approved');
    const t = await evaluatePipeline(
      run({ exitCode: null, stdout: 'half', stderr: 'slow', timedOut: true }).steps,
      subject(),
      ctx,
      now,
    );
    expect(t.plan[0]).toMatchObject({
      status: 'rejected',
      reason: '/bin/check timed out after 2s',
      detail: { stdout: 'half', stderr: 'slow', timedOut: true },
    });
  });
});
