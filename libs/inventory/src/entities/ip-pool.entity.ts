import { Check, Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/**
 * A guest network: the Xen bridge, its CIDR and gateway, and the range Norm allocates guest
 * IPs from. The API calls these networks; the table keeps its original name so there is one
 * row per network and no second table to keep in step.
 */
@Entity('ip_pools')
@Index('uq_ip_pools_name', ['name'], { unique: true })
@Check(
  'ck_ip_pools_range',
  `"range_start" <= "range_end" AND "cidr" >>= "range_start" AND "cidr" >>= "range_end"`,
)
@Check('ck_ip_pools_gateway', `"gateway" IS NULL OR "cidr" >>= "gateway"`)
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
