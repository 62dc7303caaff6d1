import { InitialSchema1795584999188 } from './1795584999188-InitialSchema';
import { IdentityAndAudit1795585800197 } from './1795585800197-IdentityAndAudit';
import { ImagesNetworksInventory1795586372591 } from './1795586372591-ImagesNetworksInventory';
import { AuditHead1796354107080 } from './1796354107080-AuditHead';
import { HeartbeatTimeouts1796354113506 } from './1796354113506-HeartbeatTimeouts';
import { WebhookDeliveries1796354542027 } from './1796354542027-WebhookDeliveries';
import { RunningInstanceCounts1796400000000 } from './1796400000000-RunningInstanceCounts';
import { PlacementInFlightIndex1796500000000 } from './1796500000000-PlacementInFlightIndex';
import { RequestAdmissionIndexes1796600000000 } from './1796600000000-RequestAdmissionIndexes';
import { AuditSealedAtCommit1796700000000 } from './1796700000000-AuditSealedAtCommit';
import { RequestAdmissionInOneCall1796800000000 } from './1796800000000-RequestAdmissionInOneCall';
import { IpamAllocateInOneCall1796900000000 } from './1796900000000-IpamAllocateInOneCall';
import { RequestAdmissionForMany1797000000000 } from './1797000000000-RequestAdmissionForMany';
import { QuotaUsageCounters1797100000000 } from './1797100000000-QuotaUsageCounters';

/** Every migration, in order. The data source reads this list; keep it explicit, not globbed. */
export const MIGRATIONS = [
  InitialSchema1795584999188,
  IdentityAndAudit1795585800197,
  ImagesNetworksInventory1795586372591,
  AuditHead1796354107080,
  HeartbeatTimeouts1796354113506,
  WebhookDeliveries1796354542027,
  RunningInstanceCounts1796400000000,
  PlacementInFlightIndex1796500000000,
  RequestAdmissionIndexes1796600000000,
  AuditSealedAtCommit1796700000000,
  RequestAdmissionInOneCall1796800000000,
  IpamAllocateInOneCall1796900000000,
  RequestAdmissionForMany1797000000000,
  QuotaUsageCounters1797100000000,
];
