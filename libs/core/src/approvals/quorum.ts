import { type Quorum } from './approval-policy';

/** One approver's vote on a human step, with the groups they were in when they voted. */
export interface Vote {
  by: string;
  decision: 'approve' | 'reject';
  groups: string[];
  at: string;
  comment: string | null;
}

export interface Tally {
  met: boolean;
  /** Approvals still needed (0 once met). */
  remaining: number;
  /** Distinct approvers that count, in vote order. */
  counted: string[];
  /** For `all`: groups no counted approver covers yet. */
  missingGroups: string[];
}

/**
 * Counts approvals toward a quorum. The requester never counts, and each person counts once:
 * under `all` one person in two of the groups covers only one of them, so covering every
 * group is a matching of distinct approvers to groups (augmenting paths; the sizes are tiny).
 */
export function tallyQuorum(
  quorum: Quorum,
  groups: readonly string[],
  votes: readonly Vote[],
  requesterId: string,
): Tally {
  const approvers = new Map<string, string[]>();
  for (const v of votes) {
    if (v.decision !== 'approve' || v.by === requesterId || approvers.has(v.by)) continue;
    const inStep = v.groups.filter((g) => groups.includes(g));
    if (inStep.length > 0) approvers.set(v.by, inStep);
  }
  const people = [...approvers.keys()];
  if (quorum === 'any')
    return {
      met: people.length >= 1,
      remaining: people.length >= 1 ? 0 : 1,
      counted: people.slice(0, 1),
      missingGroups: [],
    };
  if (quorum !== 'all') {
    const remaining = Math.max(0, quorum.n - people.length);
    return { met: remaining === 0, remaining, counted: people, missingGroups: [] };
  }
  const holder = new Map<string, string>(); // group → person covering it
  const assign = (person: string, seen: Set<string>): boolean => {
    for (const g of approvers.get(person) ?? []) {
      if (seen.has(g)) continue;
      seen.add(g);
      const current = holder.get(g);
      if (current === undefined || assign(current, seen)) {
        holder.set(g, person);
        return true;
      }
    }
    return false;
  };
  for (const p of people) assign(p, new Set());
  const missingGroups = groups.filter((g) => !holder.has(g));
  return {
    met: missingGroups.length === 0,
    remaining: missingGroups.length,
    counted: [...new Set(holder.values())],
    missingGroups,
  };
}

export function describeQuorum(quorum: Quorum, groups: readonly string[]): string {
  if (quorum === 'any') return `one approval from ${groups.join(' or ')}`;
  if (quorum === 'all') return `one approval from each of ${groups.join(', ')} (different people)`;
  return `${quorum.n} different approvers from ${groups.join(', ')}`;
}
