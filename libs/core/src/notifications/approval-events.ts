import { type StepOutcome } from '../ports/metrics.port';
import { type PlanEntry } from '../vm-requests/approval-pipeline';

/** Every event a webhook subscription may ask for; the README lists them with their meaning. */
export const APPROVAL_EVENTS = [
  'approval.pending',
  'approval.reminder',
  'approval.escalated',
  'approval.decision',
  'vm-request.approved',
  'vm-request.rejected',
] as const;
export type ApprovalEventName = (typeof APPROVAL_EVENTS)[number];

export interface EventStep {
  name: string;
  kind: 'automatic' | 'manual';
  status: PlanEntry['status'];
  groups: string[];
  waitingOn: string | null;
  remaining: number | null;
  dueAt: string | null;
}

export interface ApprovalEvent {
  event: ApprovalEventName;
  step: EventStep | null;
  decision: { decision: 'approve' | 'reject'; by: string; reason: string | null } | null;
  /** Groups an escalation added. */
  addedGroups?: string[];
  /** One line a person can read, so a chat bridge can post it as it is. */
  text: string;
}

/** A step that got decided in this change, for the step-duration histogram. */
export interface DecidedStep {
  step: string;
  outcome: StepOutcome;
  seconds: number;
}

export interface PlanChange {
  requestName: string;
  /** The plan as stored before this change (empty on creation). */
  before: readonly PlanEntry[];
  after: readonly PlanEntry[];
  outcome: 'approved' | 'rejected' | 'pending';
  /** The rejecting step's reason when the outcome is rejected. */
  reason: string | null;
  /** Who caused the change (a principal id, `system:approval-timeout`, `webhook:<step>`, …). */
  actor: string;
  now: Date;
}

interface VoteLike {
  by: string;
  decision: 'approve' | 'reject';
  comment: string | null;
}

function votes(e: PlanEntry | undefined): VoteLike[] {
  const v = e?.detail['votes'];
  return Array.isArray(v) ? (v as VoteLike[]) : [];
}

const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const settled = (e: PlanEntry | undefined): boolean => e?.status === 'approved' || e?.status === 'rejected';

function stepOf(e: PlanEntry): EventStep {
  return {
    name: e.step,
    kind: e.kind,
    status: e.status,
    groups: e.groups,
    waitingOn: e.waitingOn,
    remaining: num(e.detail['remaining']),
    dueAt: str(e.detail['dueAt']),
  };
}

/**
 * What a change of a request's approval plan means for notifications, found by comparing the
 * plan before and after. Steps decided the moment they were reached (quota, naming, capacity)
 * make no decision event: nobody waited on them, and the request's own approved or rejected
 * event carries their outcome.
 */
export function approvalEvents(c: PlanChange): ApprovalEvent[] {
  const out: ApprovalEvent[] = [];
  const name = c.requestName;
  for (const a of c.after) {
    const b = c.before.find((e) => e.index === a.index && e.step === a.step);
    const step = stepOf(a);
    if (a.status === 'pending' && b?.status !== 'pending')
      out.push({
        event: 'approval.pending',
        step,
        decision: null,
        text: `${name}: ${a.step} waits on ${a.waitingOn ?? 'a decision'}`,
      });
    const reminders = num(a.detail['reminders']) ?? 0;
    if (a.status === 'pending' && reminders > (num(b?.detail['reminders']) ?? 0))
      out.push({
        event: 'approval.reminder',
        step,
        decision: null,
        text: `reminder ${reminders}: ${name}: ${a.step} still waits on ${a.waitingOn ?? 'a decision'}`,
      });
    const escalated = a.detail['escalated'];
    if (Array.isArray(escalated) && b !== undefined && !Array.isArray(b.detail['escalated']))
      out.push({
        event: 'approval.escalated',
        step,
        decision: null,
        addedGroups: escalated as string[],
        text: `${name}: ${a.step} escalated to ${(escalated as string[]).join(', ')}`,
      });
    const fresh = votes(a).slice(votes(b).length);
    for (const v of fresh)
      out.push({
        event: 'approval.decision',
        step,
        decision: { decision: v.decision, by: v.by, reason: v.comment },
        text: `${name}: ${a.step} ${v.decision === 'approve' ? 'approved' : 'rejected'} by ${v.by}${
          v.comment ? `: ${v.comment}` : ''
        }${a.status === 'pending' && step.remaining !== null ? `; ${step.remaining} more needed` : ''}`,
      });
    if (fresh.length === 0 && settled(a) && b?.status === 'pending') {
      const by = str(a.detail['decidedBy']) ?? c.actor;
      const decision = a.status === 'approved' ? 'approve' : 'reject';
      out.push({
        event: 'approval.decision',
        step,
        decision: { decision, by, reason: a.reason },
        text: `${name}: ${a.step} ${a.status} by ${by}${a.reason ? `: ${a.reason}` : ''}`,
      });
    }
  }
  if (c.outcome === 'approved')
    out.push({ event: 'vm-request.approved', step: null, decision: null, text: `${name} approved` });
  if (c.outcome === 'rejected')
    out.push({
      event: 'vm-request.rejected',
      step: null,
      decision: null,
      text: `${name} rejected${c.reason ? `: ${c.reason}` : ''}`,
    });
  return out;
}

/**
 * Steps this change decided and how long each had waited: from the stored entry's
 * `pendingSince` (kept in Postgres, so a restart does not reset it), 0 for a step decided
 * the moment it was reached.
 */
export function decidedSteps(c: PlanChange): DecidedStep[] {
  const out: DecidedStep[] = [];
  for (const a of c.after) {
    const b = c.before.find((e) => e.index === a.index && e.step === a.step);
    if (!settled(a) || settled(b)) continue;
    const since = b?.status === 'pending' ? str(b.detail['pendingSince']) : null;
    const decidedAt = a.decidedAt === null ? c.now.getTime() : Date.parse(a.decidedAt);
    const seconds = since === null ? 0 : Math.max(0, (decidedAt - Date.parse(since)) / 1000);
    // The timer's mark is on the entry the evaluation continued from, so it shows in the result.
    const fired = str(a.detail['timeoutFired']);
    const outcome: StepOutcome =
      a.status === 'approved'
        ? fired === 'approve'
          ? 'approved_on_timeout'
          : 'approved'
        : fired === 'expire'
          ? 'expired'
          : 'rejected';
    out.push({ step: a.step, outcome, seconds });
  }
  return out;
}
