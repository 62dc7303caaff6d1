import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';

/**
 * Where a golden volume lives: on one host (`hostId` set) or on any host with a VG of this
 * name (`hostId` absent). A host-specific entry wins over a VG-wide one.
 */
export interface GoldenVolume {
  hostId?: string;
  vg: string;
  lv: string;
}

/** A VM image: the golden LVM volume new disks are snapshotted from, and how the guest boots. */
@Entity('images')
@Index('uq_images_name', ['name'], { unique: true })
@Check('ck_images_boot_method', `"boot_method" IN ('pygrub', 'kernel')`)
@Check('ck_images_kernel', `"boot_method" <> 'kernel' OR "kernel" IS NOT NULL`)
@Check('ck_images_default_disk_gb', `"default_disk_gb" > 0`)
export class ImageEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_images' })
  id!: string;

  @Column('text')
  name!: string;

  @Column('text', { name: 'os_label' })
  osLabel!: string;

  @Column('text', { name: 'boot_method' })
  bootMethod!: 'pygrub' | 'kernel';

  /** Dom0 paths of the kernel and ramdisk, for `boot_method = 'kernel'`. */
  @Column('text', { nullable: true })
  kernel!: string | null;

  @Column('text', { nullable: true })
  ramdisk!: string | null;

  @Column('text', { name: 'kernel_args', nullable: true })
  kernelArgs!: string | null;

  @Column('integer', { name: 'default_disk_gb' })
  defaultDiskGb!: number;

  @Column('jsonb', { name: 'golden_volumes', default: () => `'[]'` })
  goldenVolumes!: GoldenVolume[];

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
