import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';

/** A registered Xen host: how to reach it, what Norm last observed, and whether placement may use it. */
@Entity('hosts')
@Index('uq_hosts_name', ['name'], { unique: true })
@Check('ck_hosts_status', `"status" IN ('unknown', 'online', 'unreachable')`)
@Check('ck_hosts_port', `"port" BETWEEN 1 AND 65535`)
export class HostEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_hosts' })
  id!: string;

  @Column('text')
  name!: string;

  @Column('text')
  address!: string;

  @Column('integer', { default: 22 })
  port!: number;

  @Column('text', { name: 'ssh_user' })
  sshUser!: string;

  @Column('boolean', { default: false })
  sudo!: boolean;

  @Column('text', { name: 'host_key_fingerprint' })
  hostKeyFingerprint!: string;

  @Column('jsonb', { default: () => `'{}'` })
  labels!: Record<string, string>;

  @Column('text', { default: 'unknown' })
  status!: 'unknown' | 'online' | 'unreachable';

  @Column('boolean', { default: false })
  maintenance!: boolean;

  /** Set when the host failed too many provisions in a row; only an operator clears it. */
  @Column('text', { name: 'placement_blocked_reason', nullable: true })
  placementBlockedReason!: string | null;

  @Column('integer', { name: 'consecutive_sync_failures', default: 0 })
  consecutiveSyncFailures!: number;

  @Column('integer', { name: 'consecutive_provision_failures', default: 0 })
  consecutiveProvisionFailures!: number;

  /** Per-host limits (max concurrent operations, overcommit); unset keys fall back to config. */
  @Column('jsonb', { default: () => `'{}'` })
  limits!: Record<string, number>;

  @Column('integer', { name: 'total_memory_mb', nullable: true })
  totalMemoryMb!: number | null;

  @Column('integer', { name: 'free_memory_mb', nullable: true })
  freeMemoryMb!: number | null;

  @Column('integer', { name: 'nr_cpus', nullable: true })
  nrCpus!: number | null;

  @Column('text', { name: 'xen_version', nullable: true })
  xenVersion!: string | null;

  @Column('bigint', { name: 'storage_total_mb', nullable: true })
  storageTotalMb!: string | null;

  @Column('bigint', { name: 'storage_free_mb', nullable: true })
  storageFreeMb!: string | null;

  /** The volume groups `vgs` showed at the last sync (name, size, free). */
  @Column('jsonb', { name: 'volume_groups', default: () => `'[]'` })
  volumeGroups!: unknown[];

  /** The domains `xl list` showed at the last sync: current state only, never a growing log. */
  @Column('jsonb', { name: 'observed_domains', default: () => `'[]'` })
  observedDomains!: unknown[];

  @Column('timestamptz', { name: 'last_sync_at', nullable: true })
  lastSyncAt!: Date | null;

  @Column('text', { name: 'last_sync_error', nullable: true })
  lastSyncError!: string | null;

  @Column('integer', { default: 1 })
  version!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
