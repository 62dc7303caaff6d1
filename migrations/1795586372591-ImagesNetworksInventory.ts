import { type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * The image catalogue, each host's observed volume groups, and checks that keep a network
 * (an `ip_pools` row) self-consistent: its range and gateway lie inside its CIDR. Networks
 * reuse `ip_pools` rather than adding a table, so a network and its address range are one row.
 */
export class ImagesNetworksInventory1795586372591 implements MigrationInterface {
  name = 'ImagesNetworksInventory1795586372591';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "images" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "name" text NOT NULL,
        "os_label" text NOT NULL,
        "boot_method" text NOT NULL,
        "kernel" text,
        "ramdisk" text,
        "kernel_args" text,
        "default_disk_gb" integer NOT NULL,
        "golden_volumes" jsonb NOT NULL DEFAULT '[]'::jsonb,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "ck_images_default_disk_gb" CHECK ("default_disk_gb" > 0),
        CONSTRAINT "ck_images_kernel" CHECK ("boot_method" <> 'kernel' OR "kernel" IS NOT NULL),
        CONSTRAINT "ck_images_boot_method" CHECK ("boot_method" IN ('pygrub', 'kernel')),
        CONSTRAINT "pk_images" PRIMARY KEY ("id")
      )
    `);
    await queryRunner.query(`
      CREATE UNIQUE INDEX "uq_images_name" ON "images" ("name")
    `);
    await queryRunner.query(`
      ALTER TABLE "hosts" ADD "volume_groups" jsonb NOT NULL DEFAULT '[]'::jsonb
    `);
    await queryRunner.query(`
      ALTER TABLE "ip_pools" ADD CONSTRAINT "ck_ip_pools_gateway" CHECK ("gateway" IS NULL OR "cidr" >>= "gateway")
    `);
    await queryRunner.query(`
      ALTER TABLE "ip_pools" ADD CONSTRAINT "ck_ip_pools_range" CHECK ("range_start" <= "range_end" AND "cidr" >>= "range_start" AND "cidr" >>= "range_end")
    `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "ip_pools" DROP CONSTRAINT "ck_ip_pools_range"`);
    await queryRunner.query(`ALTER TABLE "ip_pools" DROP CONSTRAINT "ck_ip_pools_gateway"`);
    await queryRunner.query(`ALTER TABLE "hosts" DROP COLUMN "volume_groups"`);
    await queryRunner.query(`DROP INDEX "public"."uq_images_name"`);
    await queryRunner.query(`DROP TABLE "images"`);
  }
}
