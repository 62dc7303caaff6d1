import { Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { PrincipalEntity } from './principal.entity';

/** Group membership. Approval steps name groups (`network-team`, `security`). */
@Entity('principal_groups')
@Index('ix_principal_groups_group', ['groupName'])
export class PrincipalGroupEntity {
  @PrimaryColumn('uuid', { name: 'principal_id', primaryKeyConstraintName: 'pk_principal_groups' })
  principalId!: string;

  @PrimaryColumn('text', { name: 'group_name', primaryKeyConstraintName: 'pk_principal_groups' })
  groupName!: string;

  @ManyToOne(() => PrincipalEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'principal_id', foreignKeyConstraintName: 'fk_principal_groups_principal' })
  principal?: Relation<PrincipalEntity>;
}
