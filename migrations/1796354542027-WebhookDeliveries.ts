import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * The notification delivery log: one row per approval event and outbound webhook, written in
 * the transaction of the change it reports, sent by the workers with backoff. The partial
 * index keeps the senders' "what is due" query small however long the log grows.
 */
export class WebhookDeliveries1796354542027 implements MigrationInterface {
  name = 'WebhookDeliveries1796354542027';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "webhook_deliveries" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "event_id" uuid NOT NULL,
        "event" text NOT NULL,
        "subscription" text NOT NULL,
        "vm_request_id" uuid,
        "payload" jsonb NOT NULL,
        "status" text NOT NULL DEFAULT 'pending',
        "attempts" integer NOT NULL DEFAULT '0',
        "last_status" integer,
        "last_error" text,
        "last_attempt_at" TIMESTAMP WITH TIME ZONE,
        "next_attempt_at" TIMESTAMP WITH TIME ZONE DEFAULT now(),
        "delivered_at" TIMESTAMP WITH TIME ZONE,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "ck_webhook_deliveries_status" CHECK ("status" IN ('pending', 'retrying', 'delivered', 'failed')),
        CONSTRAINT "pk_webhook_deliveries" PRIMARY KEY ("id")
      )`);
    await queryRunner.query(
      `CREATE INDEX "ix_webhook_deliveries_request" ON "webhook_deliveries" ("vm_request_id")`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_webhook_deliveries_created" ON "webhook_deliveries" ("created_at", "id")`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_webhook_deliveries_due" ON "webhook_deliveries" ("next_attempt_at") WHERE "status" IN ('pending', 'retrying')`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_webhook_deliveries_event_subscription" ON "webhook_deliveries" ("event_id", "subscription")`,
    );
    await queryRunner.query(
      `ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "fk_webhook_deliveries_vm_request" FOREIGN KEY ("vm_request_id") REFERENCES "vm_requests"("id") ON DELETE SET NULL ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE "webhook_deliveries" DROP CONSTRAINT "fk_webhook_deliveries_vm_request"`,
    );
    await queryRunner.query(`DROP INDEX "public"."uq_webhook_deliveries_event_subscription"`);
    await queryRunner.query(`DROP INDEX "public"."ix_webhook_deliveries_due"`);
    await queryRunner.query(`DROP INDEX "public"."ix_webhook_deliveries_created"`);
    await queryRunner.query(`DROP INDEX "public"."ix_webhook_deliveries_request"`);
    await queryRunner.query(`DROP TABLE "webhook_deliveries"`);
  }
}
