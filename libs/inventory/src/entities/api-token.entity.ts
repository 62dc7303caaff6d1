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
import { InstanceEntity } from './instance.entity';
import { PrincipalEntity } from './principal.entity';

/**
 * A bearer credential. `api` tokens act as their principal; `instance` tokens are only good
 * for one instance's heartbeat. The secret is stored only as a scrypt hash; `prefix` is the
 * public part of the token used to find the row.
 */
@Entity('api_tokens')
@Index('uq_api_tokens_prefix', ['prefix'], { unique: true })
@Index('ix_api_tokens_principal', ['principalId'])
@Index('ix_api_tokens_instance', ['instanceId'])
@Check('ck_api_tokens_kind', `"kind" IN ('api', 'instance')`)
@Check(
  'ck_api_tokens_owner',
  `("kind" = 'api' AND "principal_id" IS NOT NULL AND "instance_id" IS NULL) OR ("kind" = 'instance' AND "instance_id" IS NOT NULL AND "principal_id" IS NULL)`,
)
export class ApiTokenEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_api_tokens' })
  id!: string;

  @Column('text')
  kind!: 'api' | 'instance';

  @Column('uuid', { name: 'principal_id', nullable: true })
  principalId!: string | null;

  @ManyToOne(() => PrincipalEntity, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'principal_id', foreignKeyConstraintName: 'fk_api_tokens_principal' })
  principal?: Relation<PrincipalEntity>;

  @Column('uuid', { name: 'instance_id', nullable: true })
  instanceId!: string | null;

  @ManyToOne(() => InstanceEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'instance_id', foreignKeyConstraintName: 'fk_api_tokens_instance' })
  instance?: Relation<InstanceEntity>;

  @Column('text')
  name!: string;

  @Column('text')
  prefix!: string;

  @Column('text', { name: 'secret_hash' })
  secretHash!: string;

  @Column('timestamptz', { name: 'expires_at', nullable: true })
  expiresAt!: Date | null;

  @Column('timestamptz', { name: 'revoked_at', nullable: true })
  revokedAt!: Date | null;

  /** Principal id, or `system:bootstrap`. */
  @Column('text', { name: 'created_by', nullable: true })
  createdBy!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
