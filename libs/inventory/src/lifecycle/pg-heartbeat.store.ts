import {
  type HeartbeatBeat,
  type HeartbeatStore,
  type HeartbeatTimeouts,
  type InstanceSignalStore,
} from '@norm/core';
import { type DataSource } from 'typeorm';

/**
 * Heartbeats on Postgres: one UPDATE … FROM (VALUES …) per batch. Neither `version` nor
 * `updated_at` is touched, so a beat never conflicts with a versioned state change. A beat
 * older than the stored one (a retried flush) never moves last-seen backwards.
 */
export class PgHeartbeatStore implements HeartbeatStore, InstanceSignalStore {
  constructor(private readonly ds: DataSource) {}

  async recordBeats(beats: readonly HeartbeatBeat[], timeouts: HeartbeatTimeouts): Promise<number> {
    if (beats.length === 0) return 0;
    const params: unknown[] = [timeouts.cattleS, timeouts.petS];
    const values = beats.map((b) => {
      params.push(b.instanceId, b.at);
      return `($${params.length - 1}::uuid, $${params.length}::timestamptz)`;
    });
    const [, count] = await this.ds.query<[unknown, number]>(
      `UPDATE "instances" AS i
          SET "last_heartbeat_at" = v."at",
              "heartbeat_deadline_at" = v."at" + make_interval(secs => COALESCE(i."heartbeat_timeout_s",
                CASE WHEN i."lifecycle_class" = 'cattle' THEN $1::int ELSE $2::int END))
         FROM (VALUES ${values.join(', ')}) AS v("id", "at")
        WHERE i."id" = v."id"
          AND i."state" IN ('running', 'stopping', 'stopped')
          AND (i."last_heartbeat_at" IS NULL OR i."last_heartbeat_at" < v."at")`,
      params,
    );
    return count;
  }

  async resolveInstances(keys: readonly string[]): Promise<Map<string, string>> {
    if (keys.length === 0) return new Map();
    const rows = await this.ds.query<
      Array<{ id: string; name: string; domain_name: string; ip: string | null }>
    >(
      `SELECT "id", "name", "domain_name", host("ip") AS "ip" FROM "instances"
        WHERE "state" IN ('running', 'stopping', 'stopped')
          AND ("name" = ANY($1::text[]) OR "domain_name" = ANY($1::text[]) OR host("ip") = ANY($1::text[]))`,
      [keys],
    );
    const map = new Map<string, string>();
    for (const r of rows)
      for (const k of [r.name, r.domain_name, r.ip]) if (k && keys.includes(k)) map.set(k, r.id);
    return map;
  }

  async markMissed(instanceIds: readonly string[], now: Date): Promise<number> {
    const [, count] = await this.ds.query<[unknown, number]>(
      `UPDATE "instances" SET "heartbeat_deadline_at" = LEAST(COALESCE("heartbeat_deadline_at", $2), $2)
        WHERE "id" = ANY($1::uuid[]) AND "state" = 'running'`,
      [instanceIds, now],
    );
    return count;
  }
}
