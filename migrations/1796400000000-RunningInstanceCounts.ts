import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * What the reaper's brakes divide by, kept so that reading it costs the same at 100 or 100,000
 * instances: the reaper's cycle must grow with the number of overdue instances, not with the
 * fleet (bench/heartbeat).
 *
 * - `running_instance_counts` holds, per host (NULL: not placed) and lifecycle class, how many
 *   instances are `running`. Triggers on `instances` keep it exact, in the same transaction
 *   as the change, so it can never disagree with the rows it counts. The update trigger only
 *   fires when state, host or class actually change: heartbeats never touch it.
 * - `ix_instances_running_heartbeat` lets the intake signal count the running instances that
 *   did NOT beat lately (few, in a healthy fleet) instead of the many that did.
 * - `ix_instances_running_deadline` replaces the cattle-only deadline index: the overdue pets
 *   (alerted, never reaped) and the instances without a deadline yet were found by reading
 *   every running row. `ix_instances_stopped` does the same for the quarantined instances.
 */
export class RunningInstanceCounts1796400000000 implements MigrationInterface {
  name = 'RunningInstanceCounts1796400000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "running_instance_counts" (
        "host_id" uuid,
        "lifecycle_class" text NOT NULL,
        "running" integer NOT NULL,
        CONSTRAINT "uq_running_instance_counts" UNIQUE NULLS NOT DISTINCT ("host_id", "lifecycle_class"),
        CONSTRAINT "ck_running_instance_counts_running" CHECK ("running" >= 0)
      )
    `);
    await queryRunner.query(`
      CREATE FUNCTION "norm_count_running_instances"() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD."state" = 'running' THEN
          UPDATE "running_instance_counts" SET "running" = "running" - 1
           WHERE "host_id" IS NOT DISTINCT FROM OLD."host_id" AND "lifecycle_class" = OLD."lifecycle_class";
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND NEW."state" = 'running' THEN
          INSERT INTO "running_instance_counts" ("host_id", "lifecycle_class", "running")
          VALUES (NEW."host_id", NEW."lifecycle_class", 1)
          ON CONFLICT ("host_id", "lifecycle_class")
          DO UPDATE SET "running" = "running_instance_counts"."running" + 1;
        END IF;
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`
      CREATE FUNCTION "norm_clear_running_instance_counts"() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        DELETE FROM "running_instance_counts";
        RETURN NULL;
      END
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER "tr_instances_count_running_insert_delete" AFTER INSERT OR DELETE ON "instances"
        FOR EACH ROW EXECUTE FUNCTION "norm_count_running_instances"()
    `);
    await queryRunner.query(`
      CREATE TRIGGER "tr_instances_count_running_update" AFTER UPDATE OF "state", "host_id", "lifecycle_class" ON "instances"
        FOR EACH ROW
        WHEN (OLD."state" IS DISTINCT FROM NEW."state"
           OR OLD."host_id" IS DISTINCT FROM NEW."host_id"
           OR OLD."lifecycle_class" IS DISTINCT FROM NEW."lifecycle_class")
        EXECUTE FUNCTION "norm_count_running_instances"()
    `);
    await queryRunner.query(`
      CREATE TRIGGER "tr_instances_count_running_truncate" AFTER TRUNCATE ON "instances"
        FOR EACH STATEMENT EXECUTE FUNCTION "norm_clear_running_instance_counts"()
    `);
    await queryRunner.query(`
      INSERT INTO "running_instance_counts" ("host_id", "lifecycle_class", "running")
      SELECT "host_id", "lifecycle_class", count(*)::int FROM "instances" WHERE "state" = 'running'
       GROUP BY "host_id", "lifecycle_class"
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_instances_running_heartbeat" ON "instances" ("last_heartbeat_at") WHERE "state" = 'running'
    `);
    await queryRunner.query(`DROP INDEX "ix_instances_cattle_deadline"`);
    await queryRunner.query(`
      CREATE INDEX "ix_instances_running_deadline" ON "instances" ("heartbeat_deadline_at", "lifecycle_class") WHERE "state" = 'running'
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_instances_stopped" ON "instances" ("id") WHERE "state" = 'stopped'
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "ix_instances_stopped"`);
    await queryRunner.query(`DROP INDEX "ix_instances_running_deadline"`);
    await queryRunner.query(`
      CREATE INDEX "ix_instances_cattle_deadline" ON "instances" ("heartbeat_deadline_at") WHERE "lifecycle_class" = 'cattle' AND "state" = 'running'
    `);
    await queryRunner.query(`DROP INDEX "ix_instances_running_heartbeat"`);
    await queryRunner.query(`DROP TRIGGER "tr_instances_count_running_truncate" ON "instances"`);
    await queryRunner.query(`DROP TRIGGER "tr_instances_count_running_update" ON "instances"`);
    await queryRunner.query(`DROP TRIGGER "tr_instances_count_running_insert_delete" ON "instances"`);
    await queryRunner.query(`DROP FUNCTION "norm_clear_running_instance_counts"()`);
    await queryRunner.query(`DROP FUNCTION "norm_count_running_instances"()`);
    await queryRunner.query(`DROP TABLE "running_instance_counts"`);
  }
}
