import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  type Relation,
  UpdateDateColumn,
} from 'typeorm';
import { HostEntity } from './host.entity';

export const VM_REQUEST_STATES = [
  'pending_approval',
  'approved',
  'provisioning',
  'running',
  'rejected',
  'cancelled',
  'failed',
] as const;

/** A requester's ask for a VM, from approval to a running domain (or a recorded end). */
@Entity('vm_requests')
@Index('ix_vm_requests_state', ['state'])
@Index('ix_vm_requests_owner_created', ['ownerId', 'createdAt'])
@Index('ix_vm_requests_host_in_flight', ['hostId'], { where: `"state" IN ('approved', 'provisioning')` })
@Index('ix_vm_requests_name_in_flight', ['name'], {
  where: `"state" IN ('pending_approval', 'approved', 'provisioning')`,
})
@Index('uq_vm_requests_owner_idempotency_key', ['ownerId', 'idempotencyKey'], {
  unique: true,
  where: '"idempotency_key" IS NOT NULL',
})
@Check('ck_vm_requests_state', `"state" IN (${VM_REQUEST_STATES.map((s) => `'${s}'`).join(', ')})`)
@Check('ck_vm_requests_lifecycle_class', `"lifecycle_class" IN ('cattle', 'pet')`)
@Check('ck_vm_requests_heartbeat_timeout', `"heartbeat_timeout_s" IS NULL OR "heartbeat_timeout_s" > 0`)
@Check('ck_vm_requests_size', `"vcpus" > 0 AND "memory_mb" > 0 AND "disk_gb" > 0`)
export class VmRequestEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_vm_requests' })
  id!: string;

  @Column('text')
  name!: string;

  @Column('uuid', { name: 'owner_id' })
  ownerId!: string;

  @Column('integer')
  vcpus!: number;

  @Column('integer', { name: 'memory_mb' })
  memoryMb!: number;

  @Column('integer', { name: 'disk_gb' })
  diskGb!: number;

  @Column('uuid', { name: 'image_id', nullable: true })
  imageId!: string | null;

  @Column('uuid', { name: 'network_id', nullable: true })
  networkId!: string | null;

  @Column('text', { name: 'lifecycle_class' })
  lifecycleClass!: 'cattle' | 'pet';

  @Column('text', { name: 'anti_affinity_group', nullable: true })
  antiAffinityGroup!: string | null;

  @Column('jsonb', { default: () => `'{}'` })
  labels!: Record<string, string>;

  /** The instance's own heartbeat timeout, copied to it at creation; null uses its class's. */
  @Column('integer', { name: 'heartbeat_timeout_s', nullable: true })
  heartbeatTimeoutS!: number | null;

  @Column('text', { nullable: true })
  purpose!: string | null;

  @Column('text', { default: 'pending_approval' })
  state!: (typeof VM_REQUEST_STATES)[number];

  @Column('text', { name: 'state_reason', nullable: true })
  stateReason!: string | null;

  @Column('text', { name: 'idempotency_key', nullable: true })
  idempotencyKey!: string | null;

  /** Hash of the canonical request body, to tell a replay from a conflicting reuse of a key. */
  @Column('text', { name: 'request_hash', nullable: true })
  requestHash!: string | null;

  @Column('uuid', { name: 'host_id', nullable: true })
  hostId!: string | null;

  @ManyToOne(() => HostEntity, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'host_id', foreignKeyConstraintName: 'fk_vm_requests_host' })
  host?: Relation<HostEntity>;

  @Column('jsonb', { name: 'approval_plan', default: () => `'[]'` })
  approvalPlan!: unknown[];

  /** The state history: every transition with who, when and why. */
  @Column('jsonb', { default: () => `'[]'` })
  history!: unknown[];

  @Column('jsonb', { nullable: true })
  error!: Record<string, unknown> | null;

  /**
   * Whether its instance is alive (not decommissioned or failed), kept by a trigger on
   * `instances` so that what a quota counts depends on this row alone (migration
   * QuotaUsageCounters).
   */
  @Column('boolean', { name: 'instance_live', default: false })
  instanceLive!: boolean;

  @Column('integer', { default: 1 })
  version!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
