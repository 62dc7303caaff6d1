import {
  type HeartbeatTimeouts,
  type ReaperCandidate,
  type ReaperHostRecord,
  type ReaperStore,
} from '@norm/core';
import { type DataSource } from 'typeorm';

interface CandidateRow {
  id: string;
  name: string;
  host_id: string | null;
  domain_name: string;
  lifecycle_class: 'cattle' | 'pet';
  last_heartbeat_at: Date | null;
  heartbeat_deadline_at: Date;
  quarantined_at: Date | null;
  timeout_s: number;
}

interface HostRow {
  id: string;
  name: string;
  address: string;
  port: number;
  ssh_user: string;
  sudo: boolean;
  host_key_fingerprint: string;
  status: 'unknown' | 'online' | 'unreachable';
  maintenance: boolean;
  live_cattle: number;
  silent_cattle: number;
}

/** The reaper's actor, as it appears in `operations.requested_by` and the audit. */
export const REAPER_ACTOR = 'system:reaper';

const TIMEOUT_SQL = `make_interval(secs => COALESCE(i."heartbeat_timeout_s",
  CASE WHEN i."lifecycle_class" = 'cattle' THEN $1::int ELSE $2::int END))`;

/**
 * The reaper's reads on Postgres. Overdue instances come from the partial index
 * `ix_instances_running_deadline`, quarantined ones from `ix_instances_stopped`, and the
 * brakes' totals from `running_instance_counts`, so a cycle costs what the overdue set costs,
 * not the fleet (bench/heartbeat measures both).
 * Quarantine needs no column of its own: an instance is quarantined when it is `stopped` and
 * its latest stop was the reaper's, and that stop's time is when the quarantine began.
 */
export class PgReaperStore implements ReaperStore {
  constructor(
    private readonly ds: DataSource,
    private readonly timeouts: HeartbeatTimeouts,
  ) {}

  async listCandidates(now: Date, limit: number): Promise<ReaperCandidate[]> {
    // An instance that never beat has no deadline yet: its clock starts when it became running.
    await this.ds.query(
      `UPDATE "instances" AS i SET "heartbeat_deadline_at" = i."updated_at" + ${TIMEOUT_SQL}
        WHERE i."state" = 'running' AND i."heartbeat_deadline_at" IS NULL`,
      [this.timeouts.cattleS, this.timeouts.petS],
    );
    const cols = `i."id", i."name", i."host_id", i."domain_name", i."lifecycle_class", i."last_heartbeat_at",
      i."heartbeat_deadline_at", COALESCE(i."heartbeat_timeout_s",
        CASE WHEN i."lifecycle_class" = 'cattle' THEN $4::int ELSE $5::int END) AS "timeout_s"`;
    const rows = await this.ds.query<CandidateRow[]>(
      `(SELECT ${cols}, NULL::timestamptz AS "quarantined_at" FROM "instances" i
         WHERE i."lifecycle_class" = 'cattle' AND i."state" = 'running' AND i."heartbeat_deadline_at" <= $1
         ORDER BY i."heartbeat_deadline_at" LIMIT $2)
       UNION ALL
       (SELECT ${cols}, NULL::timestamptz FROM "instances" i
         WHERE i."lifecycle_class" = 'pet' AND i."state" = 'running' AND i."heartbeat_deadline_at" <= $1
         ORDER BY i."heartbeat_deadline_at" LIMIT $2)
       UNION ALL
       (SELECT ${cols}, q."created_at" FROM "instances" i
         JOIN LATERAL (SELECT o."requested_by", o."created_at" FROM "operations" o
                        WHERE o."target_type" = 'instance' AND o."target_id" = i."id" AND o."kind" = 'instance.stop'
                        ORDER BY o."created_at" DESC LIMIT 1) q ON TRUE
         WHERE i."state" = 'stopped' AND q."requested_by" = $3
         LIMIT $2)`,
      [now, limit, REAPER_ACTOR, this.timeouts.cattleS, this.timeouts.petS],
    );
    return rows.map((r) => ({
      instanceId: r.id,
      name: r.name,
      hostId: r.host_id,
      domainName: r.domain_name,
      lifecycleClass: r.lifecycle_class,
      lastHeartbeatAt: r.last_heartbeat_at,
      deadlineAt: r.heartbeat_deadline_at,
      quarantinedAt: r.quarantined_at,
      timeoutS: r.timeout_s,
    }));
  }

  /**
   * Counts that cost the same at any fleet size: the live totals come from
   * `running_instance_counts` (kept by triggers), the silent cattle from the deadline index,
   * and the intake as the live total minus the running instances that did not beat within the
   * window (few, in a healthy fleet). Only a fleet that has largely gone quiet, when the
   * breaker is about to open anyway, makes the last count large.
   */
  async fleetCounts(
    now: Date,
    intakeSince: Date,
  ): Promise<{ liveCattle: number; silentCattle: number; intakeRecent: number }> {
    const rows = await this.ds.query<
      Array<{ live: number; live_all: number; silent: number; quiet: number }>
    >(
      `SELECT (SELECT coalesce(sum("running") FILTER (WHERE "lifecycle_class" = 'cattle'), 0)::int
                 FROM "running_instance_counts") AS "live",
              (SELECT coalesce(sum("running"), 0)::int FROM "running_instance_counts") AS "live_all",
              (SELECT count(*)::int FROM "instances"
                WHERE "lifecycle_class" = 'cattle' AND "state" = 'running' AND "heartbeat_deadline_at" <= $1)
                AS "silent",
              (SELECT count(*)::int FROM "instances"
                WHERE "state" = 'running' AND ("last_heartbeat_at" < $2 OR "last_heartbeat_at" IS NULL))
                AS "quiet"`,
      [now, intakeSince],
    );
    const r = rows[0];
    return {
      liveCattle: r?.live ?? 0,
      silentCattle: r?.silent ?? 0,
      intakeRecent: Math.max(0, (r?.live_all ?? 0) - (r?.quiet ?? 0)),
    };
  }

  /** The candidates' hosts, with their live cattle (kept count) and silent cattle (deadline index). */
  async hosts(hostIds: readonly string[], now: Date): Promise<ReaperHostRecord[]> {
    const rows = await this.ds.query<HostRow[]>(
      `SELECT h."id", h."name", h."address", h."port", h."ssh_user", h."sudo", h."host_key_fingerprint",
              h."status", h."maintenance",
              coalesce((SELECT c."running" FROM "running_instance_counts" c
                         WHERE c."host_id" = h."id" AND c."lifecycle_class" = 'cattle'), 0)::int AS "live_cattle",
              (SELECT count(*) FROM "instances" i
                WHERE i."host_id" = h."id" AND i."lifecycle_class" = 'cattle' AND i."state" = 'running'
                  AND i."heartbeat_deadline_at" <= $2)::int AS "silent_cattle"
         FROM "hosts" h
        WHERE h."id" = ANY($1::uuid[])`,
      [hostIds, now],
    );
    return rows.map((h) => ({
      id: h.id,
      name: h.name,
      status: h.status,
      maintenance: h.maintenance,
      endpoint: {
        name: h.name,
        address: h.address,
        port: h.port,
        user: h.ssh_user,
        hostKeyFingerprint: h.host_key_fingerprint,
        sudo: h.sudo,
      },
      liveCattle: h.live_cattle,
      silentCattle: h.silent_cattle,
    }));
  }

  async resetDeadlines(now: Date): Promise<number> {
    const [, count] = await this.ds.query<[unknown, number]>(
      `UPDATE "instances" AS i SET "heartbeat_deadline_at" = $3::timestamptz + ${TIMEOUT_SQL}
        WHERE i."state" = 'running'`,
      [this.timeouts.cattleS, this.timeouts.petS, now],
    );
    return count;
  }
}
