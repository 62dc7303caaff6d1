import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * A VM request may carry its instance's own heartbeat timeout (`heartbeatTimeout` on
 * POST /v1/vm-requests), copied to the instance when it is created. Both columns only ever
 * hold a positive number of seconds; the API's bounds are site settings, so they are not
 * constraints here.
 */
export class HeartbeatTimeouts1796354113506 implements MigrationInterface {
  name = 'HeartbeatTimeouts1796354113506';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE "vm_requests" ADD "heartbeat_timeout_s" integer
    `);
    await queryRunner.query(`
      ALTER TABLE "vm_requests" ADD CONSTRAINT "ck_vm_requests_heartbeat_timeout" CHECK ("heartbeat_timeout_s" IS NULL OR "heartbeat_timeout_s" > 0)
    `);
    await queryRunner.query(`
      ALTER TABLE "instances" ADD CONSTRAINT "ck_instances_heartbeat_timeout" CHECK ("heartbeat_timeout_s" IS NULL OR "heartbeat_timeout_s" > 0)
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "instances" DROP CONSTRAINT "ck_instances_heartbeat_timeout"`);
    await queryRunner.query(`ALTER TABLE "vm_requests" DROP CONSTRAINT "ck_vm_requests_heartbeat_timeout"`);
    await queryRunner.query(`ALTER TABLE "vm_requests" DROP COLUMN "heartbeat_timeout_s"`);
  }
}
