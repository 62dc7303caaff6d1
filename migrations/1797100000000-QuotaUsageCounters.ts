import { type MigrationInterface, type QueryRunner } from 'typeorm';
import { ADMISSION_MANY_COUNTING_ROWS } from './1797000000000-RequestAdmissionForMany';

/**
 * Quota usage kept per owner, so that admitting a request reads one row instead of every
 * request its owner has in flight. Before, that count grew with the owner's requests and was
 * most of a creation's time in Postgres: 0.19 ms per request at ~20 in flight per owner,
 * 0.68 ms at ~250 (bench/api).
 *
 * What a quota counts is unchanged: a request in flight (`pending_approval`, `approved`,
 * `provisioning`), or `running` with an instance that is not decommissioned or failed.
 *
 * - `vm_requests.instance_live` says whether the request's instance is alive. A trigger on
 *   `instances` sets it, so whether a request counts depends on its own row only
 *   (`norm_quota_counts`).
 * - `quota_usage` holds, per owner, the count, vCPUs and memory of the requests that count.
 *   Statement triggers on `vm_requests` apply each statement's changes in the same
 *   transaction, one upsert per owner, owners in ascending order, so two statements never lock
 *   one another's owners crosswise. Statements that change nothing a quota counts
 *   (a history entry, approved → provisioning) write nothing.
 * - Every change that matters to a count is an UPDATE of the request's row, and Postgres
 *   serialises those. So the instance trigger and a request's own transition cannot both miss
 *   each other's change: the later one sees the first committed, as a recount would.
 * - TRUNCATE clears what it leaves nothing to count.
 *
 * `ix_vm_requests_owner_counted` only served the count, so it goes.
 */
export class QuotaUsageCounters1797100000000 implements MigrationInterface {
  name = 'QuotaUsageCounters1797100000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "vm_requests" ADD "instance_live" boolean NOT NULL DEFAULT false`);
    await queryRunner.query(`
      UPDATE "vm_requests" r SET "instance_live" = true
        FROM "instances" i
       WHERE i."vm_request_id" = r."id" AND i."state" NOT IN ('decommissioned', 'failed')
    `);
    await queryRunner.query(`
      CREATE FUNCTION "norm_quota_counts"("state" text, "instance_live" boolean) RETURNS boolean
      LANGUAGE sql IMMUTABLE PARALLEL SAFE
      RETURN "state" IN ('pending_approval', 'approved', 'provisioning') OR ("state" = 'running' AND "instance_live")
    `);
    await queryRunner.query(`
      CREATE TABLE "quota_usage" (
        "owner_id" uuid NOT NULL,
        "instances" integer NOT NULL,
        "vcpus" integer NOT NULL,
        "memory_mb" integer NOT NULL,
        CONSTRAINT "pk_quota_usage" PRIMARY KEY ("owner_id"),
        CONSTRAINT "ck_quota_usage_not_negative" CHECK ("instances" >= 0 AND "vcpus" >= 0 AND "memory_mb" >= 0)
      )
    `);
    await queryRunner.query(`
      INSERT INTO "quota_usage" ("owner_id", "instances", "vcpus", "memory_mb")
      SELECT "owner_id", count(*), sum("vcpus"), sum("memory_mb") FROM "vm_requests"
       WHERE norm_quota_counts("state", "instance_live")
       GROUP BY "owner_id"
    `);
    // One function for the three statement triggers; each has only its own transition tables.
    // The sums change one owner at a time in ascending order. An upsert cannot carry a
    // negative change: Postgres checks the row it would insert before finding the conflict.
    await queryRunner.query(`
      CREATE FUNCTION "norm_quota_usage_apply"() RETURNS trigger LANGUAGE plpgsql AS $fn$
      DECLARE
        owners uuid[];
        counts bigint[];
        cpus bigint[];
        memory bigint[];
      BEGIN
        IF TG_OP = 'INSERT' THEN
          SELECT array_agg(d."owner_id" ORDER BY d."owner_id"), array_agg(d."n" ORDER BY d."owner_id"),
                 array_agg(d."v" ORDER BY d."owner_id"), array_agg(d."m" ORDER BY d."owner_id")
            INTO owners, counts, cpus, memory
            FROM (SELECT n."owner_id", count(*) AS "n", sum(n."vcpus") AS "v", sum(n."memory_mb") AS "m"
                    FROM "new_rows" n WHERE norm_quota_counts(n."state", n."instance_live")
                   GROUP BY n."owner_id") d;
        ELSIF TG_OP = 'UPDATE' THEN
          SELECT array_agg(d."owner_id" ORDER BY d."owner_id"), array_agg(d."n" ORDER BY d."owner_id"),
                 array_agg(d."v" ORDER BY d."owner_id"), array_agg(d."m" ORDER BY d."owner_id")
            INTO owners, counts, cpus, memory
            FROM (SELECT c."owner_id", sum(c."n") AS "n", sum(c."v") AS "v", sum(c."m") AS "m"
                    FROM (SELECT n."owner_id", 1 AS "n", n."vcpus" AS "v", n."memory_mb" AS "m" FROM "new_rows" n
                           WHERE norm_quota_counts(n."state", n."instance_live")
                          UNION ALL
                          SELECT o."owner_id", -1, -o."vcpus", -o."memory_mb" FROM "old_rows" o
                           WHERE norm_quota_counts(o."state", o."instance_live")) c
                   GROUP BY c."owner_id"
                  HAVING sum(c."n") <> 0 OR sum(c."v") <> 0 OR sum(c."m") <> 0) d;
        ELSE
          SELECT array_agg(d."owner_id" ORDER BY d."owner_id"), array_agg(-d."n" ORDER BY d."owner_id"),
                 array_agg(-d."v" ORDER BY d."owner_id"), array_agg(-d."m" ORDER BY d."owner_id")
            INTO owners, counts, cpus, memory
            FROM (SELECT o."owner_id", count(*) AS "n", sum(o."vcpus") AS "v", sum(o."memory_mb") AS "m"
                    FROM "old_rows" o WHERE norm_quota_counts(o."state", o."instance_live")
                   GROUP BY o."owner_id") d;
        END IF;
        FOR i IN 1 .. coalesce(array_length(owners, 1), 0) LOOP
          UPDATE "quota_usage" SET "instances" = "instances" + counts[i], "vcpus" = "vcpus" + cpus[i],
                 "memory_mb" = "memory_mb" + memory[i]
           WHERE "owner_id" = owners[i];
          IF NOT FOUND THEN
            -- The owner's first: another transaction may be inserting it too.
            INSERT INTO "quota_usage" AS u ("owner_id", "instances", "vcpus", "memory_mb")
            VALUES (owners[i], counts[i], cpus[i], memory[i])
            ON CONFLICT ("owner_id") DO UPDATE SET "instances" = u."instances" + EXCLUDED."instances",
              "vcpus" = u."vcpus" + EXCLUDED."vcpus", "memory_mb" = u."memory_mb" + EXCLUDED."memory_mb";
          END IF;
        END LOOP;
        RETURN NULL;
      END
      $fn$
    `);
    await queryRunner.query(`
      CREATE TRIGGER "tr_vm_requests_quota_usage_insert" AFTER INSERT ON "vm_requests"
        REFERENCING NEW TABLE AS "new_rows" FOR EACH STATEMENT EXECUTE FUNCTION "norm_quota_usage_apply"()
    `);
    await queryRunner.query(`
      CREATE TRIGGER "tr_vm_requests_quota_usage_update" AFTER UPDATE ON "vm_requests"
        REFERENCING OLD TABLE AS "old_rows" NEW TABLE AS "new_rows" FOR EACH STATEMENT
        EXECUTE FUNCTION "norm_quota_usage_apply"()
    `);
    await queryRunner.query(`
      CREATE TRIGGER "tr_vm_requests_quota_usage_delete" AFTER DELETE ON "vm_requests"
        REFERENCING OLD TABLE AS "old_rows" FOR EACH STATEMENT EXECUTE FUNCTION "norm_quota_usage_apply"()
    `);
    await queryRunner.query(`
      CREATE FUNCTION "norm_clear_quota_usage"() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        DELETE FROM "quota_usage";
        RETURN NULL;
      END
      $fn$
    `);
    await queryRunner.query(`
      CREATE TRIGGER "tr_vm_requests_quota_usage_truncate" AFTER TRUNCATE ON "vm_requests"
        FOR EACH STATEMENT EXECUTE FUNCTION "norm_clear_quota_usage"()
    `);
    // The request's row follows its instance: alive unless decommissioned, failed or gone.
    await queryRunner.query(`
      CREATE FUNCTION "norm_request_instance_live"() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
          UPDATE "vm_requests" SET "instance_live" = false WHERE "id" = OLD."vm_request_id" AND "instance_live";
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND NEW."state" NOT IN ('decommissioned', 'failed') THEN
          UPDATE "vm_requests" SET "instance_live" = true WHERE "id" = NEW."vm_request_id" AND NOT "instance_live";
        END IF;
        RETURN NULL;
      END
      $fn$
    `);
    await queryRunner.query(`
      CREATE TRIGGER "tr_instances_request_live_insert_delete" AFTER INSERT OR DELETE ON "instances"
        FOR EACH ROW EXECUTE FUNCTION "norm_request_instance_live"()
    `);
    await queryRunner.query(`
      CREATE TRIGGER "tr_instances_request_live_update" AFTER UPDATE OF "state", "vm_request_id" ON "instances"
        FOR EACH ROW
        WHEN ((OLD."state" IN ('decommissioned', 'failed')) IS DISTINCT FROM (NEW."state" IN ('decommissioned', 'failed'))
           OR OLD."vm_request_id" IS DISTINCT FROM NEW."vm_request_id")
        EXECUTE FUNCTION "norm_request_instance_live"()
    `);
    await queryRunner.query(`
      CREATE FUNCTION "norm_clear_request_instance_live"() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        UPDATE "vm_requests" SET "instance_live" = false WHERE "instance_live";
        RETURN NULL;
      END
      $fn$
    `);
    await queryRunner.query(`
      CREATE TRIGGER "tr_instances_request_live_truncate" AFTER TRUNCATE ON "instances"
        FOR EACH STATEMENT EXECUTE FUNCTION "norm_clear_request_instance_live"()
    `);
    await queryRunner.query(
      `DROP FUNCTION "norm_request_admission_many"(text[], uuid[], text[], uuid[], uuid[], text[])`,
    );
    await queryRunner.query(`
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
          coalesce(u."instances", 0), coalesce(u."vcpus", 0), coalesce(u."memory_mb", 0)
        FROM unnest(norm_request_admission_many."owners", norm_request_admission_many."idempotency_keys",
                    norm_request_admission_many."images", norm_request_admission_many."networks",
                    norm_request_admission_many."names") WITH ORDINALITY AS q("owner", "idem", "image", "network", "name", "n")
        LEFT JOIN "quota_usage" u ON u."owner_id" = q."owner"
        ORDER BY q."n";
      END
      $fn$
    `);
    await queryRunner.query(`DROP INDEX "public"."ix_vm_requests_owner_counted"`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX "ix_vm_requests_owner_counted" ON "vm_requests" ("owner_id") WHERE "state" IN ('pending_approval', 'approved', 'provisioning', 'running')`,
    );
    await queryRunner.query(
      `DROP FUNCTION "norm_request_admission_many"(text[], uuid[], text[], uuid[], uuid[], text[])`,
    );
    await queryRunner.query(ADMISSION_MANY_COUNTING_ROWS);
    await queryRunner.query(`DROP TRIGGER "tr_instances_request_live_truncate" ON "instances"`);
    await queryRunner.query(`DROP TRIGGER "tr_instances_request_live_update" ON "instances"`);
    await queryRunner.query(`DROP TRIGGER "tr_instances_request_live_insert_delete" ON "instances"`);
    await queryRunner.query(`DROP FUNCTION "norm_clear_request_instance_live"()`);
    await queryRunner.query(`DROP FUNCTION "norm_request_instance_live"()`);
    await queryRunner.query(`DROP TRIGGER "tr_vm_requests_quota_usage_truncate" ON "vm_requests"`);
    await queryRunner.query(`DROP TRIGGER "tr_vm_requests_quota_usage_delete" ON "vm_requests"`);
    await queryRunner.query(`DROP TRIGGER "tr_vm_requests_quota_usage_update" ON "vm_requests"`);
    await queryRunner.query(`DROP TRIGGER "tr_vm_requests_quota_usage_insert" ON "vm_requests"`);
    await queryRunner.query(`DROP FUNCTION "norm_clear_quota_usage"()`);
    await queryRunner.query(`DROP FUNCTION "norm_quota_usage_apply"()`);
    await queryRunner.query(`DROP TABLE "quota_usage"`);
    await queryRunner.query(`DROP FUNCTION "norm_quota_counts"(text, boolean)`);
    await queryRunner.query(`ALTER TABLE "vm_requests" DROP COLUMN "instance_live"`);
  }
}
