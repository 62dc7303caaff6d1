import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Creating a VM request locks its keys (idempotency, owner, name, groups) and then reads what
 * admission needs. The read must come after the locks in a fresh snapshot, so one plain
 * statement cannot do both: its snapshot is taken before it waits for the locks, and it would
 * miss the request whose commit released them (the quota would then count one short). A
 * PL/pgSQL function can: each statement in it takes a new snapshot. `norm_request_admission`
 * takes the locks in the order given (the order every caller uses, so two transactions never
 * wait crosswise), then runs the read, in one round trip instead of two (bench/api). Its
 * plans are cached per session like a prepared statement's.
 */
export class RequestAdmissionInOneCall1796800000000 implements MigrationInterface {
  name = 'RequestAdmissionInOneCall1796800000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION "norm_request_admission"(
        "lock_keys" text[], "owner" uuid, "idempotency_key" text, "image" uuid, "network" uuid, "name" text)
      RETURNS TABLE ("original_id" uuid, "image_found" json, "network_found" json, "name_taken" boolean,
                     "groups" text[], "instances" int, "vcpus" int, "memory_mb" int)
      LANGUAGE plpgsql AS $fn$
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext(k."key"))
           FROM unnest(norm_request_admission."lock_keys") WITH ORDINALITY AS k("key", "ord") ORDER BY k."ord";
        -- A new statement, so a new snapshot: it sees every commit that released those locks.
        RETURN QUERY SELECT
          (SELECT r."id" FROM "vm_requests" r
            WHERE r."owner_id" = norm_request_admission."owner" AND r."idempotency_key" = norm_request_admission."idempotency_key"),
          (SELECT json_build_object('name', i."name", 'defaultDiskGb', i."default_disk_gb")
             FROM "images" i WHERE i."id" = norm_request_admission."image"),
          (SELECT json_build_object('name', p."name") FROM "ip_pools" p WHERE p."id" = norm_request_admission."network"),
          EXISTS (SELECT 1 FROM "instances" i
                   WHERE i."name" = norm_request_admission."name" AND i."state" NOT IN ('decommissioned', 'failed')
                  UNION ALL
                  SELECT 1 FROM "vm_requests" r
                   WHERE r."name" = norm_request_admission."name"
                     AND r."state" IN ('pending_approval', 'approved', 'provisioning')),
          ARRAY(SELECT g."group_name" FROM "principal_groups" g WHERE g."principal_id" = norm_request_admission."owner" ORDER BY 1),
          u."instances", u."vcpus", u."memory_mb"
        FROM (
          -- What a quota counts: in flight, or running with an instance that is not gone.
          SELECT count(*)::int AS "instances", coalesce(sum(r."vcpus"), 0)::int AS "vcpus",
                 coalesce(sum(r."memory_mb"), 0)::int AS "memory_mb"
            FROM "vm_requests" r LEFT JOIN "instances" i ON i."vm_request_id" = r."id"
           WHERE r."owner_id" = norm_request_admission."owner"
             AND r."state" IN ('pending_approval', 'approved', 'provisioning', 'running')
             AND (r."state" <> 'running' OR i."state" NOT IN ('decommissioned', 'failed'))
        ) u;
      END
      $fn$
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION "norm_request_admission"(text[], uuid, text, uuid, uuid, text)`);
  }
}
