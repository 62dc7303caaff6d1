import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * What creating a request reads under its locks, found without visiting every request:
 *
 * - `ix_vm_requests_name_in_flight`: is the name held by a request in flight? Before, that
 *   read went through `ix_vm_requests_state` and visited every in-flight request, so each
 *   POST got slower as requests piled up (bench/api, where nothing leaves approved).
 * - `ix_vm_requests_owner_counted`: the owner's requests a quota may count (in flight or
 *   running). Before, `ix_vm_requests_owner_created` visited the owner's whole history,
 *   rejected, cancelled and failed requests included.
 */
export class RequestAdmissionIndexes1796600000000 implements MigrationInterface {
  name = 'RequestAdmissionIndexes1796600000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX "ix_vm_requests_name_in_flight" ON "vm_requests" ("name") WHERE "state" IN ('pending_approval', 'approved', 'provisioning')`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_vm_requests_owner_counted" ON "vm_requests" ("owner_id") WHERE "state" IN ('pending_approval', 'approved', 'provisioning', 'running')`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."ix_vm_requests_owner_counted"`);
    await queryRunner.query(`DROP INDEX "public"."ix_vm_requests_name_in_flight"`);
  }
}
