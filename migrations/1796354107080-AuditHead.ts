import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * The audit chain's head: one row with the seq and hash of the newest event, updated in the
 * same transaction as every append, so `GET /v1/audit/verify` can tell that the newest
 * events were deleted (the remaining rows would still form a valid chain).
 *
 * It is seeded from the chain as it stands: rows deleted from the end before this migration
 * cannot be detected, which is the gap this closes from here on.
 */
export class AuditHead1796354107080 implements MigrationInterface {
  name = 'AuditHead1796354107080';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "audit_head" (
        "id" smallint NOT NULL,
        "seq" bigint NOT NULL,
        "hash" text NOT NULL,
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL,
        CONSTRAINT "ck_audit_head_single_row" CHECK ("id" = 1),
        CONSTRAINT "pk_audit_head" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      INSERT INTO "audit_head" ("id", "seq", "hash", "updated_at")
      SELECT 1,
             COALESCE((SELECT "seq" FROM "audit_events" ORDER BY "seq" DESC LIMIT 1), 0),
             COALESCE((SELECT "hash" FROM "audit_events" ORDER BY "seq" DESC LIMIT 1), repeat('0', 64)),
             now()
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "audit_head"`);
  }
}
