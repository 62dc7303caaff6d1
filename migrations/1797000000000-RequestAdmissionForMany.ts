import { type MigrationInterface, type QueryRunner } from 'typeorm';
import { RequestAdmissionInOneCall1796800000000 } from './1796800000000-RequestAdmissionInOneCall';

/**
 * The function as this migration creates it: quota usage counted from the owner's requests on
 * every call. QuotaUsageCounters replaces it and puts it back on revert.
 */
export const ADMISSION_MANY_COUNTING_ROWS = `
      CREATE FUNCTION "norm_request_admission_many"(
        "lock_keys" text[], "owners" uuid[], "idempotency_keys" text[], "images" uuid[], "networks" uuid[],
        "names" text[])
      RETURNS TABLE ("ord" int, "original_id" uuid, "image_found" json, "network_found" json, "name_taken" boolean,
                     "groups" text[], "instances" int, "vcpus" int, "memory_mb" int)
      LANGUAGE plpgsql AS $fn$
      BEGIN
        -- Volatile, so evaluated after the sort: the locks are taken in ascending id.
        PERFORM pg_advisory_xact_lock(k."id")
           FROM (SELECT DISTINCT hashtext(x."key") AS "id"
                   FROM unnest(norm_request_admission_many."lock_keys") AS x("key")) k
          ORDER BY k."id";
        -- A new statement, so a new snapshot: it sees every commit that released those locks.
        RETURN QUERY SELECT
          q."n"::int,
          (SELECT r."id" FROM "vm_requests" r
            WHERE r."owner_id" = q."owner" AND r."idempotency_key" = q."idem"),
          (SELECT json_build_object('name', i."name", 'defaultDiskGb', i."default_disk_gb")
             FROM "images" i WHERE i."id" = q."image"),
          (SELECT json_build_object('name', p."name") FROM "ip_pools" p WHERE p."id" = q."network"),
          EXISTS (SELECT 1 FROM "instances" i
                   WHERE i."name" = q."name" AND i."state" NOT IN ('decommissioned', 'failed')
                  UNION ALL
                  SELECT 1 FROM "vm_requests" r
                   WHERE r."name" = q."name" AND r."state" IN ('pending_approval', 'approved', 'provisioning')),
          ARRAY(SELECT g."group_name" FROM "principal_groups" g WHERE g."principal_id" = q."owner" ORDER BY 1),
          u."instances", u."vcpus", u."memory_mb"
        FROM unnest(norm_request_admission_many."owners", norm_request_admission_many."idempotency_keys",
                    norm_request_admission_many."images", norm_request_admission_many."networks",
                    norm_request_admission_many."names") WITH ORDINALITY AS q("owner", "idem", "image", "network", "name", "n")
        CROSS JOIN LATERAL (
          -- What a quota counts: in flight, or running with an instance that is not gone. Two
          -- branches, so only running requests look their instance up (most of a busy owner's
          -- requests are in flight, and that lookup per row was most of this read's cost).
          SELECT count(*)::int AS "instances", coalesce(sum(c."vcpus"), 0)::int AS "vcpus",
                 coalesce(sum(c."memory_mb"), 0)::int AS "memory_mb"
            FROM (SELECT r."vcpus", r."memory_mb" FROM "vm_requests" r
                   WHERE r."owner_id" = q."owner" AND r."state" IN ('pending_approval', 'approved', 'provisioning')
                  UNION ALL
                  SELECT r."vcpus", r."memory_mb" FROM "vm_requests" r JOIN "instances" i ON i."vm_request_id" = r."id"
                   WHERE r."owner_id" = q."owner" AND r."state" = 'running'
                     AND i."state" NOT IN ('decommissioned', 'failed')) c
        ) u
        ORDER BY q."n";
      END
      $fn$
`;

/**
 * Creating VM requests admits several in one transaction (see `KeyedBatcher`):
 * `norm_request_admission_many` takes the locks of every request in the batch and then reads
 * what each one's admission needs, one row per request in the order given. As before, the read
 * is its own statement inside the function, so its snapshot is taken after the locks and sees
 * every commit that released them.
 *
 * The locks are taken in one order for every caller, ascending lock id (`hashtext` of the key,
 * each id once), so two transactions holding overlapping sets never wait for each other
 * crosswise. The single-request function it replaces took them in the caller's order
 * (idempotency key, owner, name, groups): that order cannot be kept across several requests.
 */
export class RequestAdmissionForMany1797000000000 implements MigrationInterface {
  name = 'RequestAdmissionForMany1797000000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(ADMISSION_MANY_COUNTING_ROWS);
    await queryRunner.query(`DROP FUNCTION "norm_request_admission"(text[], uuid, text, uuid, uuid, text)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await new RequestAdmissionInOneCall1796800000000().up(queryRunner);
    await queryRunner.query(
      `DROP FUNCTION "norm_request_admission_many"(text[], uuid[], text[], uuid[], uuid[], text[])`,
    );
  }
}
