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
import { InstanceEntity } from './instance.entity';

/** The obligation to remove one instance from one config-management target, until it is done. */
@Entity('deregistrations')
@Index('uq_deregistrations_instance_target', ['instanceId', 'target'], { unique: true })
@Index('ix_deregistrations_status_next', ['status', 'nextAttemptAt'])
@Check('ck_deregistrations_status', `"status" IN ('pending', 'done', 'failed')`)
export class DeregistrationEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_deregistrations' })
  id!: string;

  @Column('uuid', { name: 'instance_id' })
  instanceId!: string;

  @ManyToOne(() => InstanceEntity, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'instance_id', foreignKeyConstraintName: 'fk_deregistrations_instance' })
  instance?: Relation<InstanceEntity>;

  @Column('text')
  target!: string;

  @Column('text', { default: 'pending' })
  status!: 'pending' | 'done' | 'failed';

  @Column('integer', { default: 0 })
  attempts!: number;

  @Column('text', { name: 'last_error', nullable: true })
  lastError!: string | null;

  @Column('timestamptz', { name: 'next_attempt_at', nullable: true })
  nextAttemptAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
