import { describe, expect, it } from 'vitest';
import { type PlanEntry } from '../vm-requests/approval-pipeline';
import { approvalEvents, decidedSteps, type PlanChange } from './approval-events';

const NOW = new Date('2026-03-01T12:00:00Z');

function entry(over: Partial<PlanEntry> & { detail?: Record<string, unknown> }): PlanEntry {
  return {
    index: 1,
    step: 'net',
    kind: 'manual',
    status: 'pending',
    reason: null,
    waitingOn: 'one approval from network-team',
    groups: ['network-team'],
    detail: {},
    decidedAt: null,
    ...over,
  };
}

const quota = entry({
  index: 0,
  step: 'quota',
  kind: 'automatic',
  status: 'approved',
  decidedAt: NOW.toISOString(),
});

function change(before: PlanEntry[], after: PlanEntry[], over: Partial<PlanChange> = {}): PlanChange {
  return {
    requestName: 'web-1',
    before,
    after,
    outcome: 'pending',
    reason: null,
    actor: 'someone',
    now: NOW,
    ...over,
  };
}

const names = (c: PlanChange): string[] => approvalEvents(c).map((e) => e.event);

describe('approval events from a plan change', () => {
  it('creation: a step starts waiting; the automatic step decided at once makes no decision event', () => {
    const events = approvalEvents(change([], [quota, entry({})]));
    expect(events.map((e) => e.event)).toEqual(['approval.pending']);
    expect(events[0]).toMatchObject({
      step: { name: 'net', groups: ['network-team'] },
      text: 'web-1: net waits on one approval from network-team',
    });
  });

  it('a vote that leaves the step waiting is a decision with what is still needed', () => {
    const before = entry({ detail: { remaining: 2 } });
    const after = entry({
      detail: {
        remaining: 1,
        votes: [{ by: 'nina', decision: 'approve', comment: 'ok', groups: [], at: '' }],
      },
    });
    const [e] = approvalEvents(change([before], [after]));
    expect(e).toMatchObject({
      event: 'approval.decision',
      decision: { decision: 'approve', by: 'nina', reason: 'ok' },
      step: { status: 'pending', remaining: 1 },
      text: 'web-1: net approved by nina: ok; 1 more needed',
    });
  });

  it('the last vote: one decision (by the voter, not twice) and the request approved', () => {
    const before = entry({ detail: { remaining: 1 } });
    const after = entry({
      status: 'approved',
      detail: { votes: [{ by: 'nina', decision: 'approve', comment: null }], decidedBy: 'nina' },
    });
    expect(names(change([before], [after], { outcome: 'approved' }))).toEqual([
      'approval.decision',
      'vm-request.approved',
    ]);
  });

  it('reminder, escalation and expiry come from the timer marks in the entry', () => {
    const waiting = entry({ detail: { reminders: 1, pendingSince: '2026-03-01T09:00:00Z' } });
    expect(names(change([waiting], [entry({ detail: { reminders: 2 } })]))).toEqual(['approval.reminder']);
    const escalated = approvalEvents(
      change([waiting], [entry({ groups: ['network-team', 'leads'], detail: { escalated: ['leads'] } })]),
    );
    expect(escalated).toMatchObject([{ event: 'approval.escalated', addedGroups: ['leads'] }]);
    const expired = entry({ status: 'rejected', reason: 'timed out', detail: { timeoutFired: 'expire' } });
    const events = approvalEvents(
      change([waiting], [expired], {
        outcome: 'rejected',
        reason: 'net: timed out',
        actor: 'system:approval-timeout',
      }),
    );
    expect(events.map((e) => [e.event, e.decision?.by ?? null])).toEqual([
      ['approval.decision', 'system:approval-timeout'],
      ['vm-request.rejected', null],
    ]);
    expect(events[1]?.text).toBe('web-1 rejected: net: timed out');
  });

  it('an unchanged waiting step says nothing', () => {
    const waiting = entry({ detail: { reminders: 1 } });
    expect(approvalEvents(change([waiting], [waiting]))).toEqual([]);
  });
});

describe('step durations', () => {
  it('from the stored pendingSince to the decision, with the timer outcome; 0 for a step decided at once', () => {
    const before = entry({ detail: { pendingSince: '2026-03-01T09:00:00.000Z' } });
    const approvedOnTimeout = entry({
      status: 'approved',
      decidedAt: NOW.toISOString(),
      detail: { timeoutFired: 'approve' },
    });
    expect(decidedSteps(change([before], [quota, approvedOnTimeout]))).toEqual([
      { step: 'quota', outcome: 'approved', seconds: 0 },
      { step: 'net', outcome: 'approved_on_timeout', seconds: 3 * 3600 },
    ]);
    const expired = entry({
      status: 'rejected',
      decidedAt: NOW.toISOString(),
      detail: { timeoutFired: 'expire' },
    });
    expect(decidedSteps(change([before], [expired]))).toEqual([
      { step: 'net', outcome: 'expired', seconds: 10800 },
    ]);
    // Decided before this change: not observed again.
    expect(decidedSteps(change([quota], [quota]))).toEqual([]);
  });
});
