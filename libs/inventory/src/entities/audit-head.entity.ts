import { Check, Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * The audit chain's anchor: one row holding the seq and hash of the newest audit event,
 * updated in the same transaction as every append (whose row lock it also is). Links alone
 * cannot reveal that the newest events were deleted; comparing the chain's end with this row
 * can. The check keeps it to exactly one row.
 */
@Entity('audit_head')
@Check('ck_audit_head_single_row', `"id" = 1`)
export class AuditHeadEntity {
  @PrimaryColumn('smallint', { primaryKeyConstraintName: 'pk_audit_head' })
  id!: number;

  /** The newest event's seq; 0 before the first event. */
  @Column('bigint')
  seq!: string;

  /** The newest event's hash; the genesis hash before the first event. */
  @Column('text')
  hash!: string;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt!: Date;
}
