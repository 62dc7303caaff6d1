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
} from 'typeorm';
import { VmRequestEntity } from './vm-request.entity';

/** One step of a request's approval plan and its decision. */
@Entity('approvals')
@Index('uq_approvals_request_step', ['vmRequestId', 'stepIndex'], { unique: true })
@Index('ix_approvals_status_created', ['status', 'createdAt'])
@Check('ck_approvals_status', `"status" IN ('pending', 'approved', 'rejected', 'skipped', 'expired')`)
export class ApprovalEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_approvals' })
  id!: string;

  @Column('uuid', { name: 'vm_request_id' })
  vmRequestId!: string;

  @ManyToOne(() => VmRequestEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'vm_request_id', foreignKeyConstraintName: 'fk_approvals_vm_request' })
  vmRequest?: Relation<VmRequestEntity>;

  @Column('integer', { name: 'step_index' })
  stepIndex!: number;

  @Column('text', { name: 'step_name' })
  stepName!: string;

  @Column('text')
  kind!: string;

  @Column('text', { default: 'pending' })
  status!: 'pending' | 'approved' | 'rejected' | 'skipped' | 'expired';

  /** Groups that may decide a human step; empty for automatic steps. */
  @Column('text', { array: true, default: () => `'{}'` })
  groups!: string[];

  @Column('text', { name: 'decided_by', nullable: true })
  decidedBy!: string | null;

  @Column('text', { nullable: true })
  reason!: string | null;

  @Column('jsonb', { default: () => `'{}'` })
  detail!: Record<string, unknown>;

  @Column('timestamptz', { name: 'decided_at', nullable: true })
  decidedAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
