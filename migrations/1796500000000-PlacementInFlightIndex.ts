import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Placement reads, per host, the requests placed there and still in flight (approved,
 * provisioning) in one query under the placement lock. Without this index that read visits
 * every in-flight request once per host; with it, only the host's own.
 */
export class PlacementInFlightIndex1796500000000 implements MigrationInterface {
  name = 'PlacementInFlightIndex1796500000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX "ix_vm_requests_host_in_flight" ON "vm_requests" ("host_id") WHERE "state" IN ('approved', 'provisioning')`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."ix_vm_requests_host_in_flight"`);
  }
}
