import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';

/** A long-running action (provision, stop, decommission …) that clients poll after a 202. */
@Entity('operations')
@Index('ix_operations_target', ['targetType', 'targetId'])
@Index('ix_operations_open_deadline', ['deadlineAt'], { where: `"state" IN ('pending', 'running')` })
@Check('ck_operations_state', `"state" IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')`)
export class OperationEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_operations' })
  id!: string;

  @Column('text')
  kind!: string;

  @Column('text', { name: 'target_type' })
  targetType!: string;

  @Column('uuid', { name: 'target_id' })
  targetId!: string;

  @Column('text', { default: 'pending' })
  state!: 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';

  @Column('jsonb', { default: () => `'[]'` })
  steps!: unknown[];

  @Column('jsonb', { nullable: true })
  error!: Record<string, unknown> | null;

  @Column('text', { name: 'requested_by' })
  requestedBy!: string;

  /** Past this, a pending/running operation is stuck and gets resumed or failed with compensation. */
  @Column('timestamptz', { name: 'deadline_at', nullable: true })
  deadlineAt!: Date | null;

  @Column('timestamptz', { name: 'finished_at', nullable: true })
  finishedAt!: Date | null;

  @Column('integer', { default: 1 })
  version!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
