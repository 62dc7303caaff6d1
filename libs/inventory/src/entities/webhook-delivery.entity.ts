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
import { VmRequestEntity } from './vm-request.entity';

/**
 * One notification for one outbound webhook, written in the transaction of the change it
 * reports and sent by the workers with backoff: the delivery log of GET /v1/webhooks/deliveries.
 */
@Entity('webhook_deliveries')
@Index('uq_webhook_deliveries_event_subscription', ['eventId', 'subscription'], { unique: true })
@Index('ix_webhook_deliveries_due', ['nextAttemptAt'], { where: `"status" IN ('pending', 'retrying')` })
@Index('ix_webhook_deliveries_created', ['createdAt', 'id'])
@Index('ix_webhook_deliveries_request', ['vmRequestId'])
@Check('ck_webhook_deliveries_status', `"status" IN ('pending', 'retrying', 'delivered', 'failed')`)
export class WebhookDeliveryEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_webhook_deliveries' })
  id!: string;

  /** Shared by the deliveries of one event to several subscriptions. */
  @Column('uuid', { name: 'event_id' })
  eventId!: string;

  @Column('text')
  event!: string;

  /** The subscription's name in the policy file; its URL and secret are read at send time. */
  @Column('text')
  subscription!: string;

  @Column('uuid', { name: 'vm_request_id', nullable: true })
  vmRequestId!: string | null;

  @ManyToOne(() => VmRequestEntity, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'vm_request_id', foreignKeyConstraintName: 'fk_webhook_deliveries_vm_request' })
  vmRequest?: Relation<VmRequestEntity>;

  /** The exact body every attempt sends. */
  @Column('jsonb')
  payload!: Record<string, unknown>;

  @Column('text', { default: 'pending' })
  status!: 'pending' | 'retrying' | 'delivered' | 'failed';

  @Column('integer', { default: 0 })
  attempts!: number;

  @Column('integer', { name: 'last_status', nullable: true })
  lastStatus!: number | null;

  @Column('text', { name: 'last_error', nullable: true })
  lastError!: string | null;

  @Column('timestamptz', { name: 'last_attempt_at', nullable: true })
  lastAttemptAt!: Date | null;

  @Column('timestamptz', { name: 'next_attempt_at', nullable: true, default: () => 'now()' })
  nextAttemptAt!: Date | null;

  @Column('timestamptz', { name: 'delivered_at', nullable: true })
  deliveredAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
