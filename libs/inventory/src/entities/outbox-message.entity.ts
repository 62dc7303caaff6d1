import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/**
 * Transactional outbox: a job is written in the same transaction as the state change that
 * needs it, and a relay moves it to BullMQ after commit. A crash between commit and enqueue
 * leaves the row here, so the relay still delivers it.
 */
@Entity('outbox')
@Index('uq_outbox_job_id', ['jobId'], { unique: true })
@Index('ix_outbox_undispatched', ['id'], { where: `"dispatched_at" IS NULL` })
export class OutboxMessageEntity {
  @PrimaryGeneratedColumn('identity', { type: 'bigint', primaryKeyConstraintName: 'pk_outbox' })
  id!: string;

  @Column('text', { name: 'job_name' })
  jobName!: string;

  /** Deterministic id (e.g. `VmProvision:<requestId>`): two writers of the same intent make one job. */
  @Column('text', { name: 'job_id' })
  jobId!: string;

  @Column('jsonb')
  payload!: Record<string, unknown>;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'dispatched_at', nullable: true })
  dispatchedAt!: Date | null;

  /** Set by the worker when the handler finished; a redelivered job with this set is skipped. */
  @Column('timestamptz', { name: 'completed_at', nullable: true })
  completedAt!: Date | null;

  @Column('integer', { name: 'dispatch_attempts', default: 0 })
  dispatchAttempts!: number;

  @Column('text', { name: 'last_error', nullable: true })
  lastError!: string | null;
}
