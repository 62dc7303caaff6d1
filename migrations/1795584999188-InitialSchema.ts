import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * The core tables every later feature stands on. Reviewed by hand: every constraint and
 * index has an explicit name (pk_/uq_/ix_/ck_/fk_), so later migrations and error messages
 * can refer to them, and `down` drops exactly what `up` created.
 *
 * The outbox also gets a statement-level NOTIFY trigger, so the relay wakes the moment a
 * transaction that wrote a job commits (NOTIFY is delivered only on commit).
 */
export class InitialSchema1795584999188 implements MigrationInterface {
  name = 'InitialSchema1795584999188';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "hosts" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "name" text NOT NULL,
        "address" text NOT NULL,
        "port" integer NOT NULL DEFAULT '22',
        "ssh_user" text NOT NULL,
        "sudo" boolean NOT NULL DEFAULT false,
        "host_key_fingerprint" text NOT NULL,
        "labels" jsonb NOT NULL DEFAULT '{}'::jsonb,
        "status" text NOT NULL DEFAULT 'unknown',
        "maintenance" boolean NOT NULL DEFAULT false,
        "placement_blocked_reason" text,
        "consecutive_sync_failures" integer NOT NULL DEFAULT '0',
        "consecutive_provision_failures" integer NOT NULL DEFAULT '0',
        "limits" jsonb NOT NULL DEFAULT '{}'::jsonb,
        "total_memory_mb" integer,
        "free_memory_mb" integer,
        "nr_cpus" integer,
        "xen_version" text,
        "storage_total_mb" bigint,
        "storage_free_mb" bigint,
        "observed_domains" jsonb NOT NULL DEFAULT '[]'::jsonb,
        "last_sync_at" TIMESTAMP WITH TIME ZONE,
        "last_sync_error" text,
        "version" integer NOT NULL DEFAULT '1',
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "ck_hosts_port" CHECK ("port" BETWEEN 1 AND 65535),
        CONSTRAINT "ck_hosts_status" CHECK ("status" IN ('unknown', 'online', 'unreachable')),
        CONSTRAINT "pk_hosts" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_hosts_name" ON "hosts" ("name")
    `);
    await queryRunner.query(`
      CREATE TABLE "vm_requests" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "name" text NOT NULL,
        "owner_id" uuid NOT NULL,
        "vcpus" integer NOT NULL,
        "memory_mb" integer NOT NULL,
        "disk_gb" integer NOT NULL,
        "image_id" uuid,
        "network_id" uuid,
        "lifecycle_class" text NOT NULL,
        "anti_affinity_group" text,
        "labels" jsonb NOT NULL DEFAULT '{}'::jsonb,
        "purpose" text,
        "state" text NOT NULL DEFAULT 'pending_approval',
        "state_reason" text,
        "idempotency_key" text,
        "request_hash" text,
        "host_id" uuid,
        "approval_plan" jsonb NOT NULL DEFAULT '[]'::jsonb,
        "history" jsonb NOT NULL DEFAULT '[]'::jsonb,
        "error" jsonb,
        "version" integer NOT NULL DEFAULT '1',
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "ck_vm_requests_size" CHECK ("vcpus" > 0 AND "memory_mb" > 0 AND "disk_gb" > 0),
        CONSTRAINT "ck_vm_requests_lifecycle_class" CHECK ("lifecycle_class" IN ('cattle', 'pet')),
        CONSTRAINT "ck_vm_requests_state" CHECK ("state" IN ('pending_approval', 'approved', 'provisioning', 'running', 'rejected', 'cancelled', 'failed')),
        CONSTRAINT "pk_vm_requests" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_vm_requests_owner_idempotency_key" ON "vm_requests" ("owner_id", "idempotency_key") WHERE "idempotency_key" IS NOT NULL
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_vm_requests_owner_created" ON "vm_requests" ("owner_id", "created_at")
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_vm_requests_state" ON "vm_requests" ("state")
    `);
    await queryRunner.query(`
      CREATE TABLE "approvals" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "vm_request_id" uuid NOT NULL,
        "step_index" integer NOT NULL,
        "step_name" text NOT NULL,
        "kind" text NOT NULL,
        "status" text NOT NULL DEFAULT 'pending',
        "groups" text array NOT NULL DEFAULT '{}'::text[],
        "decided_by" text,
        "reason" text,
        "detail" jsonb NOT NULL DEFAULT '{}'::jsonb,
        "decided_at" TIMESTAMP WITH TIME ZONE,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "ck_approvals_status" CHECK ("status" IN ('pending', 'approved', 'rejected', 'skipped', 'expired')),
        CONSTRAINT "pk_approvals" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_approvals_status_created" ON "approvals" ("status", "created_at")
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_approvals_request_step" ON "approvals" ("vm_request_id", "step_index")
    `);
    await queryRunner.query(`
      CREATE TABLE "audit_events" (
        "seq" bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL,
        "at" TIMESTAMP WITH TIME ZONE NOT NULL,
        "actor" text NOT NULL,
        "action" text NOT NULL,
        "object_type" text NOT NULL,
        "object_id" text,
        "before" jsonb,
        "after" jsonb,
        "reason" text,
        "request_id" text,
        "prev_hash" text NOT NULL,
        "hash" text NOT NULL,
        CONSTRAINT "pk_audit_events" PRIMARY KEY ("seq")
      )
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_audit_events_hash" ON "audit_events" ("hash")
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_audit_events_at" ON "audit_events" ("at")
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_audit_events_object" ON "audit_events" ("object_type", "object_id")
    `);
    await queryRunner.query(`
      CREATE TABLE "instances" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "vm_request_id" uuid NOT NULL,
        "name" text NOT NULL,
        "owner_id" uuid NOT NULL,
        "host_id" uuid,
        "domain_name" text NOT NULL,
        "domid" integer,
        "lifecycle_class" text NOT NULL,
        "state" text NOT NULL DEFAULT 'provisioning',
        "disk_volume" text,
        "ip" inet,
        "mac" text,
        "last_heartbeat_at" TIMESTAMP WITH TIME ZONE,
        "heartbeat_deadline_at" TIMESTAMP WITH TIME ZONE,
        "heartbeat_timeout_s" integer,
        "instance_token_hash" text,
        "labels" jsonb NOT NULL DEFAULT '{}'::jsonb,
        "version" integer NOT NULL DEFAULT '1',
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "ck_instances_lifecycle_class" CHECK ("lifecycle_class" IN ('cattle', 'pet')),
        CONSTRAINT "ck_instances_state" CHECK ("state" IN ('provisioning', 'running', 'stopping', 'stopped', 'decommissioning', 'decommissioned', 'failed')),
        CONSTRAINT "pk_instances" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_instances_cattle_deadline" ON "instances" ("heartbeat_deadline_at") WHERE "lifecycle_class" = 'cattle' AND "state" = 'running'
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_instances_host_state" ON "instances" ("host_id", "state")
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_instances_live_name" ON "instances" ("name") WHERE "state" NOT IN ('decommissioned', 'failed')
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_instances_vm_request" ON "instances" ("vm_request_id")
    `);
    await queryRunner.query(`
      CREATE TABLE "deregistrations" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "instance_id" uuid NOT NULL,
        "target" text NOT NULL,
        "status" text NOT NULL DEFAULT 'pending',
        "attempts" integer NOT NULL DEFAULT '0',
        "last_error" text,
        "next_attempt_at" TIMESTAMP WITH TIME ZONE,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "ck_deregistrations_status" CHECK ("status" IN ('pending', 'done', 'failed')),
        CONSTRAINT "pk_deregistrations" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_deregistrations_status_next" ON "deregistrations" ("status", "next_attempt_at")
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_deregistrations_instance_target" ON "deregistrations" ("instance_id", "target")
    `);
    await queryRunner.query(`
      CREATE TABLE "ip_pools" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "name" text NOT NULL,
        "bridge" text NOT NULL,
        "cidr" cidr NOT NULL,
        "gateway" inet,
        "range_start" inet NOT NULL,
        "range_end" inet NOT NULL,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "pk_ip_pools" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_ip_pools_name" ON "ip_pools" ("name")
    `);
    await queryRunner.query(`
      CREATE TABLE "ip_allocations" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "pool_id" uuid NOT NULL,
        "ip" inet NOT NULL,
        "mac" text NOT NULL,
        "instance_id" uuid,
        "allocated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "released_at" TIMESTAMP WITH TIME ZONE,
        CONSTRAINT "ck_ip_allocations_xen_mac" CHECK ("mac" ~ '^00:16:3e:[0-7][0-9a-f]:[0-9a-f]{2}:[0-9a-f]{2}$'),
        CONSTRAINT "pk_ip_allocations" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_ip_allocations_instance" ON "ip_allocations" ("instance_id")
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_ip_allocations_live_mac" ON "ip_allocations" ("mac") WHERE "released_at" IS NULL
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_ip_allocations_live_ip" ON "ip_allocations" ("pool_id", "ip") WHERE "released_at" IS NULL
    `);
    await queryRunner.query(`
      CREATE TABLE "operations" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "kind" text NOT NULL,
        "target_type" text NOT NULL,
        "target_id" uuid NOT NULL,
        "state" text NOT NULL DEFAULT 'pending',
        "steps" jsonb NOT NULL DEFAULT '[]'::jsonb,
        "error" jsonb,
        "requested_by" text NOT NULL,
        "deadline_at" TIMESTAMP WITH TIME ZONE,
        "finished_at" TIMESTAMP WITH TIME ZONE,
        "version" integer NOT NULL DEFAULT '1',
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "ck_operations_state" CHECK ("state" IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
        CONSTRAINT "pk_operations" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_operations_open_deadline" ON "operations" ("deadline_at") WHERE "state" IN ('pending', 'running')
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_operations_target" ON "operations" ("target_type", "target_id")
    `);
    await queryRunner.query(`
      CREATE TABLE "outbox" (
        "id" bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL,
        "job_name" text NOT NULL,
        "job_id" text NOT NULL,
        "payload" jsonb NOT NULL,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "dispatched_at" TIMESTAMP WITH TIME ZONE,
        "completed_at" TIMESTAMP WITH TIME ZONE,
        "dispatch_attempts" integer NOT NULL DEFAULT '0',
        "last_error" text,
        CONSTRAINT "pk_outbox" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_outbox_undispatched" ON "outbox" ("id") WHERE "dispatched_at" IS NULL
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_outbox_job_id" ON "outbox" ("job_id")
    `);
    await queryRunner.query(`
      ALTER TABLE "vm_requests" ADD CONSTRAINT "fk_vm_requests_host" FOREIGN KEY ("host_id") REFERENCES "hosts"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
    `);
    await queryRunner.query(`
      ALTER TABLE "approvals" ADD CONSTRAINT "fk_approvals_vm_request" FOREIGN KEY ("vm_request_id") REFERENCES "vm_requests"("id") ON DELETE CASCADE ON UPDATE NO ACTION
    `);
    await queryRunner.query(`
      ALTER TABLE "instances" ADD CONSTRAINT "fk_instances_vm_request" FOREIGN KEY ("vm_request_id") REFERENCES "vm_requests"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
    `);
    await queryRunner.query(`
      ALTER TABLE "instances" ADD CONSTRAINT "fk_instances_host" FOREIGN KEY ("host_id") REFERENCES "hosts"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
    `);
    await queryRunner.query(`
      ALTER TABLE "deregistrations" ADD CONSTRAINT "fk_deregistrations_instance" FOREIGN KEY ("instance_id") REFERENCES "instances"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
    `);
    await queryRunner.query(`
      ALTER TABLE "ip_allocations" ADD CONSTRAINT "fk_ip_allocations_pool" FOREIGN KEY ("pool_id") REFERENCES "ip_pools"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
    `);
    await queryRunner.query(`
      CREATE FUNCTION "norm_outbox_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('norm_outbox', '');
        RETURN NULL;
      END;
      $$
    `);
    await queryRunner.query(`
      CREATE TRIGGER "tr_outbox_notify" AFTER INSERT ON "outbox"
      FOR EACH STATEMENT EXECUTE FUNCTION "norm_outbox_notify"()
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "tr_outbox_notify" ON "outbox"`);
    await queryRunner.query(`DROP FUNCTION "norm_outbox_notify"()`);
    await queryRunner.query(`ALTER TABLE "ip_allocations" DROP CONSTRAINT "fk_ip_allocations_pool"`);
    await queryRunner.query(`ALTER TABLE "deregistrations" DROP CONSTRAINT "fk_deregistrations_instance"`);
    await queryRunner.query(`ALTER TABLE "instances" DROP CONSTRAINT "fk_instances_host"`);
    await queryRunner.query(`ALTER TABLE "instances" DROP CONSTRAINT "fk_instances_vm_request"`);
    await queryRunner.query(`ALTER TABLE "approvals" DROP CONSTRAINT "fk_approvals_vm_request"`);
    await queryRunner.query(`ALTER TABLE "vm_requests" DROP CONSTRAINT "fk_vm_requests_host"`);
    await queryRunner.query(`DROP INDEX "public"."uq_outbox_job_id"`);
    await queryRunner.query(`DROP INDEX "public"."ix_outbox_undispatched"`);
    await queryRunner.query(`DROP TABLE "outbox"`);
    await queryRunner.query(`DROP INDEX "public"."ix_operations_target"`);
    await queryRunner.query(`DROP INDEX "public"."ix_operations_open_deadline"`);
    await queryRunner.query(`DROP TABLE "operations"`);
    await queryRunner.query(`DROP INDEX "public"."uq_ip_allocations_live_ip"`);
    await queryRunner.query(`DROP INDEX "public"."uq_ip_allocations_live_mac"`);
    await queryRunner.query(`DROP INDEX "public"."ix_ip_allocations_instance"`);
    await queryRunner.query(`DROP TABLE "ip_allocations"`);
    await queryRunner.query(`DROP INDEX "public"."uq_ip_pools_name"`);
    await queryRunner.query(`DROP TABLE "ip_pools"`);
    await queryRunner.query(`DROP INDEX "public"."uq_deregistrations_instance_target"`);
    await queryRunner.query(`DROP INDEX "public"."ix_deregistrations_status_next"`);
    await queryRunner.query(`DROP TABLE "deregistrations"`);
    await queryRunner.query(`DROP INDEX "public"."uq_instances_vm_request"`);
    await queryRunner.query(`DROP INDEX "public"."uq_instances_live_name"`);
    await queryRunner.query(`DROP INDEX "public"."ix_instances_host_state"`);
    await queryRunner.query(`DROP INDEX "public"."ix_instances_cattle_deadline"`);
    await queryRunner.query(`DROP TABLE "instances"`);
    await queryRunner.query(`DROP INDEX "public"."ix_audit_events_object"`);
    await queryRunner.query(`DROP INDEX "public"."ix_audit_events_at"`);
    await queryRunner.query(`DROP INDEX "public"."uq_audit_events_hash"`);
    await queryRunner.query(`DROP TABLE "audit_events"`);
    await queryRunner.query(`DROP INDEX "public"."uq_approvals_request_step"`);
    await queryRunner.query(`DROP INDEX "public"."ix_approvals_status_created"`);
    await queryRunner.query(`DROP TABLE "approvals"`);
    await queryRunner.query(`DROP INDEX "public"."ix_vm_requests_state"`);
    await queryRunner.query(`DROP INDEX "public"."ix_vm_requests_owner_created"`);
    await queryRunner.query(`DROP INDEX "public"."uq_vm_requests_owner_idempotency_key"`);
    await queryRunner.query(`DROP TABLE "vm_requests"`);
    await queryRunner.query(`DROP INDEX "public"."uq_hosts_name"`);
    await queryRunner.query(`DROP TABLE "hosts"`);
  }
}
