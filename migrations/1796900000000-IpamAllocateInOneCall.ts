import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Allocating an address locks its network's row, so allocations on one network run one at a
 * time; the lock lasts until the allocating transaction ends. Done from the application, the
 * lock was held over five round trips (lock, read, insert, the instance's update, commit) and
 * a burst of provisions queued on it (bench/provision: the first hosts' `xl create` waited on
 * it). `norm_ipam_allocate` takes the lock and then, in new snapshots that see every
 * allocation committed before the lock was granted, returns the instance's live allocation
 * or inserts the lowest free address with the first of the candidate MACs no live allocation
 * holds: one round trip. Its outcome says which: `existing`, `allocated`, `no-network`,
 * `full` or `mac-exhausted`.
 */
export class IpamAllocateInOneCall1796900000000 implements MigrationInterface {
  name = 'IpamAllocateInOneCall1796900000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION "norm_ipam_allocate"("pool" uuid, "instance" uuid, "macs" text[])
      RETURNS TABLE ("outcome" text, "id" uuid, "pool_id" uuid, "ip" text, "mac" text, "instance_id" uuid,
                     "allocated_at" timestamptz, "released_at" timestamptz)
      LANGUAGE plpgsql AS $fn$
      #variable_conflict use_column
      DECLARE
        "range" record;
        "candidate" inet;
        "m" text;
      BEGIN
        SELECT p."range_start", p."range_end", p."gateway" INTO "range"
          FROM "ip_pools" p WHERE p."id" = norm_ipam_allocate."pool" FOR UPDATE;
        IF NOT FOUND THEN
          RETURN QUERY SELECT 'no-network', NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::uuid,
                              NULL::timestamptz, NULL::timestamptz;
          RETURN;
        END IF;
        -- New statements, so new snapshots: they see the allocation whose commit released the lock.
        RETURN QUERY SELECT 'existing', a."id", a."pool_id", host(a."ip"), a."mac", a."instance_id",
                            a."allocated_at", a."released_at"
          FROM "ip_allocations" a
         WHERE a."pool_id" = norm_ipam_allocate."pool" AND a."instance_id" = norm_ipam_allocate."instance"
           AND a."released_at" IS NULL
         LIMIT 1;
        IF FOUND THEN RETURN; END IF;
        SELECT "range"."range_start" + g."n" INTO "candidate"
          FROM generate_series(0::bigint, "range"."range_end" - "range"."range_start") AS g("n")
         WHERE ("range"."gateway" IS NULL OR "range"."range_start" + g."n" <> "range"."gateway")
           AND NOT EXISTS (SELECT 1 FROM "ip_allocations" a
                            WHERE a."pool_id" = norm_ipam_allocate."pool" AND a."released_at" IS NULL
                              AND a."ip" = "range"."range_start" + g."n")
         ORDER BY g."n"
         LIMIT 1;
        IF "candidate" IS NULL THEN
          RETURN QUERY SELECT 'full', NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::uuid,
                              NULL::timestamptz, NULL::timestamptz;
          RETURN;
        END IF;
        FOREACH "m" IN ARRAY norm_ipam_allocate."macs" LOOP
          -- A live MAC already drawn is skipped; a live IP taken behind the lock's back still
          -- fails on its unique index.
          RETURN QUERY INSERT INTO "ip_allocations" AS a ("pool_id", "ip", "mac", "instance_id")
            VALUES (norm_ipam_allocate."pool", "candidate", "m", norm_ipam_allocate."instance")
            ON CONFLICT ("mac") WHERE "released_at" IS NULL DO NOTHING
            RETURNING 'allocated', a."id", a."pool_id", host(a."ip"), a."mac", a."instance_id",
                      a."allocated_at", a."released_at";
          IF FOUND THEN RETURN; END IF;
        END LOOP;
        RETURN QUERY SELECT 'mac-exhausted', NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::uuid,
                            NULL::timestamptz, NULL::timestamptz;
      END
      $fn$
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION "norm_ipam_allocate"(uuid, uuid, text[])`);
  }
}
