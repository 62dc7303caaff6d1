import { type PlanEntry } from '../vm-requests/approval-pipeline';
import { type Vote } from './quorum';

/** "Who must act now", per waiting step, in words a requester can read without the policy. */
export interface MustAct {
  step: string;
  kind: 'automatic' | 'manual';
  /** Plain sentence, e.g. "network-team: one approval from network-team; 0 of 1 so far, times out 2026-…". */
  summary: string;
  waitingOn: string | null;
  groups: string[];
  remaining: number | null;
  approvedBy: string[];
  since: string | null;
  dueAt: string | null;
}

export function whoMustAct(plan: readonly PlanEntry[]): MustAct[] {
  return plan
    .filter((p) => p.status === 'pending')
    .map((p) => {
      const votes = Array.isArray(p.detail['votes']) ? (p.detail['votes'] as Vote[]) : [];
      const approvedBy = [...new Set(votes.filter((v) => v.decision === 'approve').map((v) => v.by))];
      const remaining = typeof p.detail['remaining'] === 'number' ? p.detail['remaining'] : null;
      const dueAt = typeof p.detail['dueAt'] === 'string' ? p.detail['dueAt'] : null;
      const since = typeof p.detail['pendingSince'] === 'string' ? p.detail['pendingSince'] : null;
      const parts = [`${p.step} waits on ${p.waitingOn ?? 'a decision'}`];
      if (remaining !== null) parts.push(`${remaining} more approval${remaining === 1 ? '' : 's'} needed`);
      if (approvedBy.length > 0) parts.push(`approved so far by ${approvedBy.join(', ')}`);
      if (dueAt !== null) parts.push(`times out at ${dueAt}`);
      return {
        step: p.step,
        kind: p.kind,
        summary: parts.join('; '),
        waitingOn: p.waitingOn,
        groups: p.groups,
        remaining,
        approvedBy,
        since,
        dueAt,
      };
    });
}
