import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/** An address range Norm allocates guest IPs from, on one Xen bridge. */
@Entity('ip_pools')
@Index('uq_ip_pools_name', ['name'], { unique: true })
export class IpPoolEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_ip_pools' })
  id!: string;

  @Column('text')
  name!: string;

  @Column('text')
  bridge!: string;

  @Column('cidr')
  cidr!: string;

  @Column('inet', { nullable: true })
  gateway!: string | null;

  @Column('inet', { name: 'range_start' })
  rangeStart!: string;

  @Column('inet', { name: 'range_end' })
  rangeEnd!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
