import { describe, expect, it } from 'vitest';
import { tallyQuorum, type Vote } from './quorum';

const vote = (by: string, groups: string[], decision: Vote['decision'] = 'approve'): Vote => ({
  by,
  decision,
  groups,
  at: '2026-01-01T00:00:00Z',
  comment: null,
});

describe('quorum', () => {
  it('any: one approver from any named group', () => {
    expect(tallyQuorum('any', ['net', 'sec'], [], 'req').met).toBe(false);
    expect(tallyQuorum('any', ['net', 'sec'], [vote('a', ['sec'])], 'req')).toMatchObject({
      met: true,
      remaining: 0,
    });
  });

  it('all: one per group, and one person in both groups covers only one', () => {
    const both = [vote('a', ['net', 'sec'])];
    expect(tallyQuorum('all', ['net', 'sec'], both, 'req')).toMatchObject({ met: false, remaining: 1 });
    // b only in net: the matching moves a to sec.
    expect(tallyQuorum('all', ['net', 'sec'], [...both, vote('b', ['net'])], 'req')).toMatchObject({
      met: true,
      missingGroups: [],
    });
  });

  it('n of M: distinct people, each counted once', () => {
    const votes = [vote('a', ['net', 'sec']), vote('a', ['net']), vote('b', ['sec'])];
    expect(tallyQuorum({ n: 3 }, ['net', 'sec'], votes, 'req')).toMatchObject({ met: false, remaining: 1 });
    expect(tallyQuorum({ n: 2 }, ['net', 'sec'], votes, 'req')).toMatchObject({
      met: true,
      counted: ['a', 'b'],
    });
  });

  it('never counts the requester, whatever their groups', () => {
    expect(tallyQuorum('any', ['net'], [vote('req', ['net'])], 'req').met).toBe(false);
    expect(tallyQuorum({ n: 1 }, ['net'], [vote('req', ['net'])], 'req').met).toBe(false);
  });

  it('ignores approvers outside the step groups and rejections', () => {
    expect(tallyQuorum('any', ['net'], [vote('a', ['dba']), vote('b', ['net'], 'reject')], 'req').met).toBe(
      false,
    );
  });
});
