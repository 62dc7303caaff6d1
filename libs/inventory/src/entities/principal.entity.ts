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
 * A person or a service. Deleting one only stamps `deleted_at`: audit events keep naming
 * it, and the name becomes free for a new principal.
 */
@Entity('principals')
@Index('uq_principals_live_name', ['name'], { unique: true, where: `"deleted_at" IS NULL` })
@Check('ck_principals_kind', `"kind" IN ('person', 'service')`)
@Check(
  'ck_principals_roles',
  `"roles" <@ ARRAY['viewer', 'requester', 'approver', 'operator', 'admin']::text[]`,
)
export class PrincipalEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_principals' })
  id!: string;

  @Column('text')
  kind!: 'person' | 'service';

  @Column('text')
  name!: string;

  @Column('text', { array: true, default: () => `'{}'` })
  roles!: string[];

  @Column('timestamptz', { name: 'deleted_at', nullable: true })
  deletedAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
