import { type AuditEventInput } from '../audit';
import { type HostEndpoint } from '../ports';
import { type ReaperCandidate } from './reaper.decide';

/** A host as the reaper needs it: how to reach it and how silent its cattle are. */
export interface ReaperHostRecord {
  id: string;
  name: string;
  status: 'unknown' | 'online' | 'unreachable';
  maintenance: boolean;
  endpoint: HostEndpoint;
  liveCattle: number;
  silentCattle: number;
}

/** Reads for one reaper cycle; every query is bounded by the overdue set, not the fleet. */
export interface ReaperStore {
  /**
   * Running instances past their heartbeat deadline (cattle and pets), plus every instance
   * the reaper quarantined, oldest deadline first, at most `limit`.
   */
  listCandidates(now: Date, limit: number): Promise<ReaperCandidate[]>;
  /** Live cattle, how many are past their deadline, and how many beat since `intakeSince`. */
  fleetCounts(
    now: Date,
    intakeSince: Date,
  ): Promise<{ liveCattle: number; silentCattle: number; intakeRecent: number }>;
  hosts(hostIds: readonly string[], now: Date): Promise<ReaperHostRecord[]>;
  /**
   * Gives every live instance a fresh deadline of `now` + its timeout. Used when the breaker
   * recovers: the silence was Norm's (or the network's), so no instance should be judged on it.
   */
  resetDeadlines(now: Date): Promise<number>;
}

/** `already-taken`: an earlier cycle (or an operator) got there first; nothing was done or recorded. */
export type ReaperActOutcome = 'acted' | 'already-taken';

/**
 * The reaper's effects. Each one is keyed by the instance and commits `decision` (the
 * `lifecycle.reap.act` audit event) in the same transaction as the effect, so a reaper that
 * dies anywhere in a cycle leaves either both or neither: the next reaper re-reads the state
 * these wrote, acts on what is left, and audits each decision exactly once.
 */
export interface ReaperActions {
  /** Two-phase step one: `xl shutdown`, keeping disk, IP and MAC; records the quarantine. */
  quarantine(
    c: ReaperCandidate,
    host: ReaperHostRecord,
    at: Date,
    decision: AuditEventInput,
  ): Promise<ReaperActOutcome>;
  /** Starts the quarantined domain again from its kept disk and config; clears the quarantine. */
  revive(
    c: ReaperCandidate,
    host: ReaperHostRecord | undefined,
    at: Date,
    decision: AuditEventInput,
  ): Promise<ReaperActOutcome>;
  /** Enqueues the one InstanceDecommission job (deterministic id) and marks the instance decommissioning. */
  decommission(
    c: ReaperCandidate,
    reason: string,
    at: Date,
    decision: AuditEventInput,
  ): Promise<ReaperActOutcome>;
}

/** What operators asked for, shared by every replica (the API writes it, the leading reaper reads it). */
export interface ReaperControlState {
  paused: boolean;
  /** Bumped by each reset-breaker request; the reaper acts once per new value. */
  resetSeq: number;
  resetBy: string | null;
}

/** The status the leading reaper publishes after each cycle, for `GET /v1/lifecycle/status`. */
export interface ReaperStatusView {
  leader: boolean;
  /** The leading worker (host:pid), when it said. */
  leaderId: string | null;
  mode: string;
  startedAt: string;
  startupGraceUntil: string;
  paused: boolean;
  breaker: { reason: string; since: string } | null;
  intakeBaseline: number | null;
  actionsInWindow: number;
  lastCycle: {
    at: string;
    durationMs: number;
    candidates: number;
    acted: number;
    held: number;
    alerts: number;
    frozenHosts: string[];
  } | null;
  thresholds: Record<string, unknown>;
}

export interface ReaperControl {
  read(): Promise<ReaperControlState>;
  setPaused(paused: boolean): Promise<void>;
  requestReset(actor: string): Promise<void>;
  publishStatus(status: ReaperStatusView): Promise<void>;
  readStatus(): Promise<ReaperStatusView | null>;
}
