import { type NormConfig } from '../config';
import { type Clock, systemClock } from '../ports';
import { buildApprovalSteps } from './approval-pipeline';
import { type VmRequestUnitOfWork } from './vm-request.port';
import { VmRequestService } from './vm-request.service';

/** The API and the worker build the service the same way, so both apply the same steps and bounds. */
export function vmRequestServiceFromConfig(
  config: NormConfig,
  uow: VmRequestUnitOfWork,
  clock: Clock = systemClock,
): VmRequestService {
  return new VmRequestService(
    uow,
    buildApprovalSteps({
      steps: config.approvalSteps,
      quota: { perPrincipal: config.quotaPerPrincipal, groups: config.quotaGroups },
      namePattern: config.namePattern,
    }),
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
    },
  );
}
