import { type NormConfig } from '../config';
import { heartbeatTimeoutBoundsOf } from '../lifecycle/heartbeat';
import { type Clock, type NormMetrics, systemClock } from '../ports';
import { type Checklist } from '../approvals/step-kinds';
import { checklistFromConfig } from '../approvals/checklist.factory';
import { type VmRequestUnitOfWork } from './vm-request.port';
import { VmRequestService } from './vm-request.service';

/**
 * The API and the worker build the service the same way, so both apply the same steps and
 * bounds. Pass the checklist when the caller also needs it (the approvals routes), so the
 * policy file is read once.
 */
export function vmRequestServiceFromConfig(
  config: NormConfig,
  uow: VmRequestUnitOfWork,
  clock: Clock = systemClock,
  checklist: Checklist = checklistFromConfig(config),
  metrics?: NormMetrics,
): VmRequestService {
  return new VmRequestService(
    uow,
    checklist.steps,
    clock,
    {
      bounds: {
        maxVcpus: config.vmMaxVcpus,
        minMemoryMb: config.vmMinMemoryMb,
        maxMemoryMb: config.vmMaxMemoryMb,
        maxDiskGb: config.vmMaxDiskGb,
      },
      placement: {
        strategy: config.placementStrategy,
        dom0ReserveMb: config.dom0ReserveMb,
        vcpuOvercommitRatio: config.vcpuOvercommitRatio,
        antiAffinityMode: config.antiAffinityMode,
      },
      heartbeatTimeoutBounds: heartbeatTimeoutBoundsOf(config),
    },
    { subscriptions: checklist.subscriptions, ...(metrics ? { metrics } : {}) },
  );
}
