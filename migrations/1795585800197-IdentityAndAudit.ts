import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Principals, their groups and their bearer tokens (the audit_events table already exists).
 * Reviewed by hand: explicit constraint names, and `down` drops exactly what `up` created.
 *
 * Principals are soft-deleted, so the unique name index covers live rows only. A token
 * belongs to exactly one principal (`api`) or one instance (`instance`); the check makes
 * the mix-up impossible rather than merely unlikely.
 */
export class IdentityAndAudit1795585800197 implements MigrationInterface {
  name = 'IdentityAndAudit1795585800197';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "principals" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "kind" text NOT NULL,
        "name" text NOT NULL,
        "roles" text array NOT NULL DEFAULT '{}',
        "deleted_at" TIMESTAMP WITH TIME ZONE,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "ck_principals_roles" CHECK ("roles" <@ ARRAY['viewer', 'requester', 'approver', 'operator', 'admin']::text[]),
        CONSTRAINT "ck_principals_kind" CHECK ("kind" IN ('person', 'service')),
        CONSTRAINT "pk_principals" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_principals_live_name" ON "principals" ("name") WHERE "deleted_at" IS NULL
    `);
    await queryRunner.query(`
      CREATE TABLE "principal_groups" (
        "principal_id" uuid NOT NULL,
        "group_name" text NOT NULL,
        CONSTRAINT "pk_principal_groups" PRIMARY KEY ("principal_id", "group_name")
      )
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_principal_groups_group" ON "principal_groups" ("group_name")
    `);
    await queryRunner.query(`
      CREATE TABLE "api_tokens" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "kind" text NOT NULL,
        "principal_id" uuid,
        "instance_id" uuid,
        "name" text NOT NULL,
        "prefix" text NOT NULL,
        "secret_hash" text NOT NULL,
        "expires_at" TIMESTAMP WITH TIME ZONE,
        "revoked_at" TIMESTAMP WITH TIME ZONE,
        "created_by" text,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "ck_api_tokens_owner" CHECK (("kind" = 'api' AND "principal_id" IS NOT NULL AND "instance_id" IS NULL) OR ("kind" = 'instance' AND "instance_id" IS NOT NULL AND "principal_id" IS NULL)),
        CONSTRAINT "ck_api_tokens_kind" CHECK ("kind" IN ('api', 'instance')),
        CONSTRAINT "pk_api_tokens" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_api_tokens_prefix" ON "api_tokens" ("prefix")
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_api_tokens_principal" ON "api_tokens" ("principal_id")
    `);
    await queryRunner.query(`
      CREATE INDEX "ix_api_tokens_instance" ON "api_tokens" ("instance_id")
    `);
    await queryRunner.query(`
      ALTER TABLE "principal_groups" ADD CONSTRAINT "fk_principal_groups_principal"
        FOREIGN KEY ("principal_id") REFERENCES "principals"("id") ON DELETE CASCADE ON UPDATE NO ACTION
    `);
    await queryRunner.query(`
      ALTER TABLE "api_tokens" ADD CONSTRAINT "fk_api_tokens_principal"
        FOREIGN KEY ("principal_id") REFERENCES "principals"("id") ON DELETE RESTRICT ON UPDATE NO ACTION
    `);
    await queryRunner.query(`
      ALTER TABLE "api_tokens" ADD CONSTRAINT "fk_api_tokens_instance"
        FOREIGN KEY ("instance_id") REFERENCES "instances"("id") ON DELETE CASCADE ON UPDATE NO ACTION
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "api_tokens" DROP CONSTRAINT "fk_api_tokens_instance"`);
    await queryRunner.query(`ALTER TABLE "api_tokens" DROP CONSTRAINT "fk_api_tokens_principal"`);
    await queryRunner.query(`ALTER TABLE "principal_groups" DROP CONSTRAINT "fk_principal_groups_principal"`);
    await queryRunner.query(`DROP INDEX "public"."ix_api_tokens_instance"`);
    await queryRunner.query(`DROP INDEX "public"."ix_api_tokens_principal"`);
    await queryRunner.query(`DROP INDEX "public"."uq_api_tokens_prefix"`);
    await queryRunner.query(`DROP TABLE "api_tokens"`);
    await queryRunner.query(`DROP INDEX "public"."ix_principal_groups_group"`);
    await queryRunner.query(`DROP TABLE "principal_groups"`);
    await queryRunner.query(`DROP INDEX "public"."uq_principals_live_name"`);
    await queryRunner.query(`DROP TABLE "principals"`);
  }
}
