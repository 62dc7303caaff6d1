import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * The audit chain is sealed by Postgres when the writing transaction commits.
 *
 * The chain has one head, so appends are strictly serial. Before, a transaction chained its
 * events with one statement near its end and held the head's row lock from that statement
 * through a round trip to the process and back with COMMIT: at a few hundred VM requests a
 * second, every request waited tens of milliseconds on that lock (bench/api).
 *
 * Now a transaction stages its events in `audit_pending` (no lock), and a deferred constraint
 * trigger calls `norm_audit_seal()` during COMMIT: it locks the head, chains this
 * transaction's staged events onto it in staging order, inserts them into `audit_events`,
 * moves the head and clears the staging rows. The lock is held only for that and the commit's
 * WAL flush. The chain itself is unchanged (sha256 over prev_hash, a newline and the body the
 * process prepared), so `GET /v1/audit/verify` and every existing row are untouched. A
 * missing head raises, so the commit fails and the change is not written without its audit
 * (fail closed).
 *
 * `audit_pending` is UNLOGGED: its rows never outlive the transaction that wrote them (the
 * seal deletes them before the commit completes, and a crash aborts that transaction anyway),
 * so writing them to the WAL would buy nothing.
 */
export class AuditSealedAtCommit1796700000000 implements MigrationInterface {
  name = 'AuditSealedAtCommit1796700000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE UNLOGGED TABLE "audit_pending" (
        "id" bigint GENERATED ALWAYS AS IDENTITY,
        "txid" xid8 NOT NULL DEFAULT pg_current_xact_id(),
        "at" TIMESTAMP WITH TIME ZONE NOT NULL,
        "actor" text NOT NULL,
        "action" text NOT NULL,
        "object_type" text NOT NULL,
        "object_id" text,
        "before" jsonb,
        "after" jsonb,
        "reason" text,
        "request_id" text,
        "body" text NOT NULL,
        CONSTRAINT "pk_audit_pending" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`CREATE INDEX "ix_audit_pending_txid" ON "audit_pending" ("txid")`);
    await queryRunner.query(`
      CREATE FUNCTION "norm_audit_seal"() RETURNS TABLE ("seq" bigint, "hash" text, "prev_hash" text)
      LANGUAGE plpgsql AS $fn$
      #variable_conflict use_column
      DECLARE
        head_hash text;
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM "audit_pending" WHERE "txid" = pg_current_xact_id()) THEN
          RETURN;
        END IF;
        -- The one lock every append takes, held until this transaction ends.
        SELECT "hash" INTO head_hash FROM "audit_head" WHERE "id" = 1 FOR UPDATE;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'the audit_head row is missing; GET /v1/audit/verify reports it';
        END IF;
        RETURN QUERY
        WITH RECURSIVE
          "ev" AS (
            SELECT row_number() OVER (ORDER BY p."id") AS "ord", p.*
              FROM "audit_pending" p WHERE p."txid" = pg_current_xact_id()
          ),
          "chain" AS (
            SELECT e."ord", head_hash AS "prev_hash",
                   encode(sha256(convert_to(head_hash || E'\\n' || e."body", 'UTF8')), 'hex') AS "hash"
              FROM "ev" e WHERE e."ord" = 1
            UNION ALL
            SELECT e."ord", c."hash",
                   encode(sha256(convert_to(c."hash" || E'\\n' || e."body", 'UTF8')), 'hex')
              FROM "chain" c JOIN "ev" e ON e."ord" = c."ord" + 1
          ),
          -- Sequence numbers are taken in chain order, under the head lock.
          "inserted" AS (
            INSERT INTO "audit_events" ("at", "actor", "action", "object_type", "object_id", "before", "after",
                                        "reason", "request_id", "prev_hash", "hash")
            SELECT e."at", e."actor", e."action", e."object_type", e."object_id", e."before", e."after",
                   e."reason", e."request_id", c."prev_hash", c."hash"
              FROM "ev" e JOIN "chain" c ON c."ord" = e."ord"
             ORDER BY e."ord"
            RETURNING "seq", "hash", "prev_hash"
          ),
          "moved" AS (
            UPDATE "audit_head" SET "seq" = last."seq", "hash" = last."hash", "updated_at" = now()
              FROM (SELECT * FROM "inserted" ORDER BY "seq" DESC LIMIT 1) last
             WHERE "audit_head"."id" = 1
            RETURNING last."seq", last."hash", last."prev_hash"
          ),
          "cleared" AS (DELETE FROM "audit_pending" WHERE "txid" = pg_current_xact_id())
        SELECT m."seq", m."hash", m."prev_hash" FROM "moved" m;
      END
      $fn$
    `);
    await queryRunner.query(`
      CREATE FUNCTION "norm_audit_seal_at_commit"() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        -- The first staged row's trigger seals them all; the rest find nothing left to do.
        PERFORM * FROM "norm_audit_seal"();
        RETURN NULL;
      END
      $fn$
    `);
    await queryRunner.query(`
      CREATE CONSTRAINT TRIGGER "audit_pending_seal" AFTER INSERT ON "audit_pending"
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "norm_audit_seal_at_commit"()
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "audit_pending_seal" ON "audit_pending"`);
    await queryRunner.query(`DROP FUNCTION "norm_audit_seal_at_commit"()`);
    await queryRunner.query(`DROP FUNCTION "norm_audit_seal"()`);
    await queryRunner.query(`DROP TABLE "audit_pending"`);
  }
}
