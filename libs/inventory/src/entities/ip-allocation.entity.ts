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
import { IpPoolEntity } from './ip-pool.entity';

/**
 * One IP and MAC held by an instance. The partial unique indexes make "never twice" a
 * database guarantee, not an application hope, even under concurrent requests.
 */
@Entity('ip_allocations')
@Index('uq_ip_allocations_live_ip', ['poolId', 'ip'], { unique: true, where: `"released_at" IS NULL` })
@Index('uq_ip_allocations_live_mac', ['mac'], { unique: true, where: `"released_at" IS NULL` })
@Index('ix_ip_allocations_instance', ['instanceId'])
@Check('ck_ip_allocations_xen_mac', `"mac" ~ '^00:16:3e:[0-7][0-9a-f]:[0-9a-f]{2}:[0-9a-f]{2}$'`)
export class IpAllocationEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_ip_allocations' })
  id!: string;

  @Column('uuid', { name: 'pool_id' })
  poolId!: string;

  @ManyToOne(() => IpPoolEntity, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'pool_id', foreignKeyConstraintName: 'fk_ip_allocations_pool' })
  pool?: Relation<IpPoolEntity>;

  @Column('inet')
  ip!: string;

  @Column('text')
  mac!: string;

  @Column('uuid', { name: 'instance_id', nullable: true })
  instanceId!: string | null;

  @CreateDateColumn({ name: 'allocated_at', type: 'timestamptz' })
  allocatedAt!: Date;

  /** Set only once the domain is confirmed gone; until then the address stays taken. */
  @Column('timestamptz', { name: 'released_at', nullable: true })
  releasedAt!: Date | null;
}
