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
import { VmRequestEntity } from './vm-request.entity';

export const INSTANCE_STATES = [
  'provisioning',
  'running',
  'stopping',
  'stopped',
  'decommissioning',
  'decommissioned',
  'failed',
] as const;

/** A VM that Norm created (or is creating) on a host. */
@Entity('instances')
@Index('uq_instances_vm_request', ['vmRequestId'], { unique: true })
@Index('uq_instances_live_name', ['name'], {
  unique: true,
  where: `"state" NOT IN ('decommissioned', 'failed')`,
})
@Index('ix_instances_host_state', ['hostId', 'state'])
@Index('ix_instances_running_heartbeat', ['lastHeartbeatAt'], { where: `"state" = 'running'` })
@Index('ix_instances_running_deadline', ['heartbeatDeadlineAt', 'lifecycleClass'], {
  where: `"state" = 'running'`,
})
@Index('ix_instances_stopped', ['id'], { where: `"state" = 'stopped'` })
@Check('ck_instances_state', `"state" IN (${INSTANCE_STATES.map((s) => `'${s}'`).join(', ')})`)
@Check('ck_instances_heartbeat_timeout', `"heartbeat_timeout_s" IS NULL OR "heartbeat_timeout_s" > 0`)
@Check('ck_instances_lifecycle_class', `"lifecycle_class" IN ('cattle', 'pet')`)
export class InstanceEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_instances' })
  id!: string;

  @Column('uuid', { name: 'vm_request_id' })
  vmRequestId!: string;

  @ManyToOne(() => VmRequestEntity, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'vm_request_id', foreignKeyConstraintName: 'fk_instances_vm_request' })
  vmRequest?: Relation<VmRequestEntity>;

  @Column('text')
  name!: string;

  @Column('uuid', { name: 'owner_id' })
  ownerId!: string;

  @Column('uuid', { name: 'host_id', nullable: true })
  hostId!: string | null;

  @ManyToOne(() => HostEntity, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'host_id', foreignKeyConstraintName: 'fk_instances_host' })
  host?: Relation<HostEntity>;

  @Column('text', { name: 'domain_name' })
  domainName!: string;

  @Column('integer', { nullable: true })
  domid!: number | null;

  @Column('text', { name: 'lifecycle_class' })
  lifecycleClass!: 'cattle' | 'pet';

  @Column('text', { default: 'provisioning' })
  state!: (typeof INSTANCE_STATES)[number];

  @Column('text', { name: 'disk_volume', nullable: true })
  diskVolume!: string | null;

  @Column('inet', { nullable: true })
  ip!: string | null;

  @Column('text', { nullable: true })
  mac!: string | null;

  @Column('timestamptz', { name: 'last_heartbeat_at', nullable: true })
  lastHeartbeatAt!: Date | null;

  @Column('timestamptz', { name: 'heartbeat_deadline_at', nullable: true })
  heartbeatDeadlineAt!: Date | null;

  /** Per-instance override of the heartbeat timeout; null uses the lifecycle class default. */
  @Column('integer', { name: 'heartbeat_timeout_s', nullable: true })
  heartbeatTimeoutS!: number | null;

  @Column('text', { name: 'instance_token_hash', nullable: true })
  instanceTokenHash!: string | null;

  @Column('jsonb', { default: () => `'{}'` })
  labels!: Record<string, string>;

  @Column('integer', { default: 1 })
  version!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
