import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/**
 * Append-only audit log. Each row carries the hash of the previous one (a hash chain),
 * so an edited or deleted row is detectable.
 */
@Entity('audit_events')
@Index('ix_audit_events_object', ['objectType', 'objectId'])
@Index('ix_audit_events_at', ['at'])
@Index('uq_audit_events_hash', ['hash'], { unique: true })
export class AuditEventEntity {
  @PrimaryGeneratedColumn('identity', { type: 'bigint', primaryKeyConstraintName: 'pk_audit_events' })
  seq!: string;

  @Column('timestamptz')
  at!: Date;

  /** A principal id, or `system:<loop>` for automated decisions. */
  @Column('text')
  actor!: string;

  @Column('text')
  action!: string;

  @Column('text', { name: 'object_type' })
  objectType!: string;

  @Column('text', { name: 'object_id', nullable: true })
  objectId!: string | null;

  @Column('jsonb', { nullable: true })
  before!: Record<string, unknown> | null;

  @Column('jsonb', { nullable: true })
  after!: Record<string, unknown> | null;

  @Column('text', { nullable: true })
  reason!: string | null;

  @Column('text', { name: 'request_id', nullable: true })
  requestId!: string | null;

  @Column('text', { name: 'prev_hash' })
  prevHash!: string;

  @Column('text')
  hash!: string;
}
