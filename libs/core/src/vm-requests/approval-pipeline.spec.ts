import { describe, expect, it } from 'vitest';
import {
  type ApprovalContext,
  type ApprovalStep,
  type ApprovalSubject,
  evaluatePipeline,
  NamingStep,
  parseGroupQuotas,
  parseQuotaLimits,
  QuotaStep,
  type QuotaUsage,
} from './approval-pipeline';

const subject = (over: Partial<ApprovalSubject> = {}): ApprovalSubject => ({
  id: 'r1',
  name: 'web-1',
  ownerId: 'p1',
  ownerGroups: [],
  vcpus: 2,
  memoryMb: 2048,
  diskGb: 10,
  lifecycleClass: 'cattle',
  labels: {},
  ...over,
});

const usage = (byScope: Record<string, QuotaUsage>): ApprovalContext => ({
  usage: (scope) =>
    Promise.resolve(
      byScope['ownerId' in scope ? scope.ownerId : `group:${scope.group}`] ?? {
        instances: 0,
        vcpus: 0,
        memoryMb: 0,
      },
    ),
});

const now = new Date('2026-01-01T00:00:00Z');

describe('approval pipeline', () => {
  it('approves at once when every automatic step approves', async () => {
    const steps = [new QuotaStep({ perPrincipal: { instances: 5 }, groups: {} }), new NamingStep(/^[a-z]/)];
    const r = await evaluatePipeline(steps, subject(), usage({}), now);
    expect(r.outcome).toBe('approved');
    expect(r.plan.map((p) => p.status)).toEqual(['approved', 'approved']);
  });

  it('stops at the first reject and leaves later steps not reached', async () => {
    const steps = [new NamingStep(/^db-/), new QuotaStep({ perPrincipal: {}, groups: {} })];
    const r = await evaluatePipeline(steps, subject(), usage({}), now);
    expect(r.outcome).toBe('rejected');
    expect(r.reason).toMatch(/^naming: /);
    expect(r.plan.map((p) => p.status)).toEqual(['rejected', 'not_reached']);
  });

  it('a pending step names what it waits on', async () => {
    const human: ApprovalStep = {
      name: 'ops-review',
      kind: 'manual',
      evaluate: () => Promise.resolve({ decision: 'pending', waitingOn: 'group ops', groups: ['ops'] }),
    };
    const r = await evaluatePipeline([human, new NamingStep(/./)], subject(), usage({}), now);
    expect(r.outcome).toBe('pending');
    expect(r.plan[0]).toMatchObject({ status: 'pending', waitingOn: 'group ops', groups: ['ops'] });
    expect(r.plan[1]?.status).toBe('not_reached');
  });
});

describe('quota step', () => {
  it('counts what is held and in flight plus this request', async () => {
    const step = new QuotaStep({ perPrincipal: { vcpus: 8 }, groups: {} });
    const ok = await step.evaluate(
      subject({ vcpus: 2 }),
      usage({ p1: { instances: 3, vcpus: 6, memoryMb: 0 } }),
    );
    expect(ok.decision).toBe('approve');
    const no = await step.evaluate(
      subject({ vcpus: 3 }),
      usage({ p1: { instances: 3, vcpus: 6, memoryMb: 0 } }),
    );
    expect(no).toMatchObject({ decision: 'reject', detail: { resource: 'vcpus', wanted: 9, limit: 8 } });
  });

  it('applies the quota of each group the owner belongs to', async () => {
    const step = new QuotaStep({ perPrincipal: {}, groups: { dev: { instances: 2 } } });
    const r = await step.evaluate(
      subject({ ownerGroups: ['dev', 'other'] }),
      usage({ 'group:dev': { instances: 2, vcpus: 0, memoryMb: 0 } }),
    );
    expect(r).toMatchObject({ decision: 'reject', detail: { scope: 'group dev', resource: 'instances' } });
  });
});

describe('naming step', () => {
  it('rejects reserved names', async () => {
    expect((await new NamingStep(/./).evaluate(subject({ name: 'dom0' }))).decision).toBe('reject');
  });
});

describe('quota settings', () => {
  it('parses limits and group quotas', () => {
    expect(parseQuotaLimits('instances=3, vcpus=8')).toEqual({ instances: 3, vcpus: 8 });
    expect(parseGroupQuotas('ops:instances=5;dev:memoryMb=1024')).toEqual({
      ops: { instances: 5 },
      dev: { memoryMb: 1024 },
    });
    expect(() => parseQuotaLimits('cpus=3')).toThrow(/bad quota term/);
  });
});
