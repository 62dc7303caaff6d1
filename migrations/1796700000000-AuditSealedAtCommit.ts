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
 * transaction's staged events onto it in staging order (a plain loop: one cached INSERT per
 * event), inserts them into `audit_events`, moves the head and clears the staging rows. The lock is held only for that and the commit's
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
        "seal" boolean NOT NULL DEFAULT false,
        CONSTRAINT "pk_audit_pending" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`CREATE INDEX "ix_audit_pending_txid" ON "audit_pending" ("txid")`);
    await queryRunner.query(`
      CREATE FUNCTION "norm_audit_seal"(OUT "seq" bigint, OUT "hash" text, OUT "prev_hash" text)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        e record;
        head_hash text;
        link text;
      BEGIN
        FOR e IN SELECT p.* FROM "audit_pending" p WHERE p."txid" = pg_current_xact_id() ORDER BY p."id" LOOP
          IF head_hash IS NULL THEN
            -- The one lock every append takes, held until this transaction ends; taken only
            -- when there is something to chain.
            SELECT h."hash" INTO head_hash FROM "audit_head" h WHERE h."id" = 1 FOR UPDATE;
            IF NOT FOUND THEN
              RAISE EXCEPTION 'the audit_head row is missing; GET /v1/audit/verify reports it';
            END IF;
          END IF;
          link := encode(sha256(convert_to(head_hash || E'\\n' || e."body", 'UTF8')), 'hex');
          -- Sequence numbers are taken in chain order, under the head lock.
          INSERT INTO "audit_events" AS a ("at", "actor", "action", "object_type", "object_id", "before", "after",
                                           "reason", "request_id", "prev_hash", "hash")
          VALUES (e."at", e."actor", e."action", e."object_type", e."object_id", e."before", e."after",
                  e."reason", e."request_id", head_hash, link)
          RETURNING a."seq" INTO norm_audit_seal."seq";
          norm_audit_seal."prev_hash" := head_hash;
          norm_audit_seal."hash" := link;
          head_hash := link;
        END LOOP;
        IF norm_audit_seal."seq" IS NULL THEN
          RETURN;
        END IF;
        UPDATE "audit_head" SET "seq" = norm_audit_seal."seq", "hash" = norm_audit_seal."hash", "updated_at" = now()
         WHERE "id" = 1;
        DELETE FROM "audit_pending" WHERE "txid" = pg_current_xact_id();
      END
      $fn$
    `);
    await queryRunner.query(`
      CREATE FUNCTION "norm_audit_seal_at_commit"() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        PERFORM "norm_audit_seal"();
        RETURN NULL;
      END
      $fn$
    `);
    // Once per staged batch (its first row carries "seal"), not once per event: the first
    // firing seals everything the transaction staged, a later one finds nothing left.
    await queryRunner.query(`
      CREATE CONSTRAINT TRIGGER "audit_pending_seal" AFTER INSERT ON "audit_pending"
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW."seal")
        EXECUTE FUNCTION "norm_audit_seal_at_commit"()
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "audit_pending_seal" ON "audit_pending"`);
    await queryRunner.query(`DROP FUNCTION "norm_audit_seal_at_commit"()`);
    await queryRunner.query(`DROP FUNCTION "norm_audit_seal"()`);
    await queryRunner.query(`DROP TABLE "audit_pending"`);
  }
}
