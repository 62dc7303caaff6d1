import { ApiTokenEntity } from './api-token.entity';
import { ApprovalEntity } from './approval.entity';
import { AuditEventEntity } from './audit-event.entity';
import { AuditHeadEntity } from './audit-head.entity';
import { DeregistrationEntity } from './deregistration.entity';
import { HostEntity } from './host.entity';
import { ImageEntity } from './image.entity';
import { InstanceEntity } from './instance.entity';
import { IpAllocationEntity } from './ip-allocation.entity';
import { IpPoolEntity } from './ip-pool.entity';
import { OperationEntity } from './operation.entity';
import { OutboxMessageEntity } from './outbox-message.entity';
import { PrincipalGroupEntity } from './principal-group.entity';
import { PrincipalEntity } from './principal.entity';
import { VmRequestEntity } from './vm-request.entity';
import { WebhookDeliveryEntity } from './webhook-delivery.entity';

export {
  ApiTokenEntity,
  ApprovalEntity,
  AuditEventEntity,
  AuditHeadEntity,
  DeregistrationEntity,
  HostEntity,
  ImageEntity,
  InstanceEntity,
  IpAllocationEntity,
  IpPoolEntity,
  OperationEntity,
  OutboxMessageEntity,
  PrincipalEntity,
  PrincipalGroupEntity,
  VmRequestEntity,
  WebhookDeliveryEntity,
};

export const ENTITIES = [
  HostEntity,
  VmRequestEntity,
  ApprovalEntity,
  InstanceEntity,
  OperationEntity,
  AuditEventEntity,
  AuditHeadEntity,
  IpPoolEntity,
  IpAllocationEntity,
  DeregistrationEntity,
  OutboxMessageEntity,
  PrincipalEntity,
  PrincipalGroupEntity,
  ApiTokenEntity,
  ImageEntity,
  WebhookDeliveryEntity,
];
