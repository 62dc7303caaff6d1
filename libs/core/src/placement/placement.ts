/**
 * Placement as a pure function: which host takes a VM of this size, and why every other host
 * does not. No I/O, no clock: the caller gathers the hosts (with the capacity already promised
 * to requests in flight) and serialises decisions, so two requests never both take the last
 * gigabyte.
 */

export type PlacementStrategy = 'spread' | 'pack';
export type AntiAffinityMode = 'hard' | 'soft';

export interface PlacementRequest {
  memoryMb: number;
  vcpus: number;
  diskGb: number;
  antiAffinity?: { group: string; mode: AntiAffinityMode } | undefined;
}

/** Capacity promised to requests that are placed on a host but not yet visible in `xl info`. */
export interface PromisedCapacity {
  memoryMb: number;
  vcpus: number;
  diskMb: number;
}

export interface PlacementHost {
  id: string;
  name: string;
  status: 'unknown' | 'online' | 'unreachable';
  maintenance: boolean;
  placementBlockedReason: string | null;
  /** From the last sync; null until a host has been synced once. */
  freeMemoryMb: number | null;
  nrCpus: number | null;
  /** Free space of the volume group new disks land in (the largest one when there are several). */
  storageFreeMb: number | null;
  /** vCPUs of every guest domain the host runs (dom0 excluded: it has its own pinned CPUs). */
  allocatedVcpus: number;
  promised: PromisedCapacity;
  /** Anti-affinity group → how many of its members this host already holds (running or promised). */
  groupMembers: Readonly<Record<string, number>>;
  /** Per-host overrides of the fleet options. */
  limits?: { dom0ReserveMb?: number; vcpuOvercommitRatio?: number } | undefined;
}

export interface PlacementOptions {
  strategy: PlacementStrategy;
  /** Memory kept free on every host for dom0 growth and Xen's own overhead. */
  dom0ReserveMb: number;
  /** Guest vCPUs allowed per physical CPU. */
  vcpuOvercommitRatio: number;
}

export type RejectionCode =
  | 'not_online'
  | 'maintenance'
  | 'placement_blocked'
  | 'not_synced'
  | 'insufficient_memory'
  | 'insufficient_storage'
  | 'vcpu_overcommit'
  | 'anti_affinity';

export interface Rejection {
  code: RejectionCode;
  message: string;
  /** The numbers behind the decision, so an operator can check it by hand. */
  data?: Record<string, unknown>;
}

export interface HostRejection {
  hostId: string;
  hostName: string;
  reasons: Rejection[];
}

export interface PlacementCandidate {
  hostId: string;
  hostName: string;
  /** Memory left after this VM (and the dom0 reserve, and promised capacity). */
  memoryLeftMb: number;
  vcpusLeft: number;
  /** Members of the request's anti-affinity group already on the host (soft mode only > 0). */
  groupMembers: number;
}

export interface PlacementPlan {
  /** The host to use, or null when none fits; `reason` then says why. */
  chosen: PlacementCandidate | null;
  /** Every host that passed the filters, best first. */
  candidates: PlacementCandidate[];
  rejected: HostRejection[];
  /** True when soft anti-affinity could not be honoured and a host already holding the group was chosen. */
  antiAffinityRelaxed: boolean;
  reason?: string;
}

export const DEFAULT_PLACEMENT_OPTIONS: PlacementOptions = {
  strategy: 'spread',
  dom0ReserveMb: 1024,
  vcpuOvercommitRatio: 4,
};

/**
 * The host as the next decision must see it once `request` is placed there: its capacity
 * promised and, with a group, one more member. Lets one pass place several requests in turn.
 */
export function withPlaced(host: PlacementHost, request: PlacementRequest): PlacementHost {
  const group = request.antiAffinity?.group;
  return {
    ...host,
    promised: {
      memoryMb: host.promised.memoryMb + request.memoryMb,
      vcpus: host.promised.vcpus + request.vcpus,
      diskMb: host.promised.diskMb + request.diskGb * 1024,
    },
    groupMembers:
      group === undefined
        ? host.groupMembers
        : { ...host.groupMembers, [group]: (host.groupMembers[group] ?? 0) + 1 },
  };
}

/** Filters every host, weighs the survivors and picks the best; never throws. */
export function planPlacement(
  request: PlacementRequest,
  hosts: readonly PlacementHost[],
  options: PlacementOptions = DEFAULT_PLACEMENT_OPTIONS,
): PlacementPlan {
  const rejected: HostRejection[] = [];
  const candidates: PlacementCandidate[] = [];
  const group = request.antiAffinity?.group;
  const hard = request.antiAffinity?.mode === 'hard';
  let antiAffinityOnly = 0;

  for (const host of hosts) {
    const reasons = capacityRejections(request, host, options);
    const members = group === undefined ? 0 : (host.groupMembers[group] ?? 0);
    if (hard && members > 0) {
      reasons.push({
        code: 'anti_affinity',
        message: `host already holds ${members} member(s) of anti-affinity group "${group}"`,
        data: { group, members },
      });
      if (reasons.length === 1) antiAffinityOnly++;
    }
    if (reasons.length > 0) {
      rejected.push({ hostId: host.id, hostName: host.name, reasons });
      continue;
    }
    const reserve = host.limits?.dom0ReserveMb ?? options.dom0ReserveMb;
    const ratio = host.limits?.vcpuOvercommitRatio ?? options.vcpuOvercommitRatio;
    candidates.push({
      hostId: host.id,
      hostName: host.name,
      memoryLeftMb: (host.freeMemoryMb ?? 0) - host.promised.memoryMb - reserve - request.memoryMb,
      vcpusLeft:
        Math.floor((host.nrCpus ?? 0) * ratio) - host.allocatedVcpus - host.promised.vcpus - request.vcpus,
      groupMembers: members,
    });
  }

  candidates.sort(compareCandidates(options.strategy));
  const chosen = candidates[0] ?? null;
  if (chosen) {
    return { chosen, candidates, rejected, antiAffinityRelaxed: chosen.groupMembers > 0 };
  }
  let reason: string;
  if (hosts.length === 0) reason = 'no hosts are registered';
  else if (hard && antiAffinityOnly > 0)
    reason = `hard anti-affinity group "${group}": every host with capacity already holds a member`;
  else reason = 'no host passes the placement filters';
  return { chosen: null, candidates, rejected, antiAffinityRelaxed: false, reason };
}

function capacityRejections(
  request: PlacementRequest,
  host: PlacementHost,
  options: PlacementOptions,
): Rejection[] {
  const reasons: Rejection[] = [];
  if (host.status !== 'online')
    reasons.push({ code: 'not_online', message: `host is ${host.status}`, data: { status: host.status } });
  if (host.maintenance) reasons.push({ code: 'maintenance', message: 'host is in maintenance' });
  if (host.placementBlockedReason !== null)
    reasons.push({
      code: 'placement_blocked',
      message: `host is blocked from placement: ${host.placementBlockedReason}`,
    });
  if (host.freeMemoryMb === null || host.nrCpus === null || host.storageFreeMb === null) {
    // Without a sync there is nothing to weigh; guessing would place blind.
    reasons.push({ code: 'not_synced', message: 'host has not reported its capacity yet' });
    return reasons;
  }
  const reserve = host.limits?.dom0ReserveMb ?? options.dom0ReserveMb;
  const usableMb = host.freeMemoryMb - host.promised.memoryMb - reserve;
  if (usableMb < request.memoryMb)
    reasons.push({
      code: 'insufficient_memory',
      message: `needs ${request.memoryMb} MiB, ${Math.max(usableMb, 0)} MiB usable`,
      data: {
        requestedMb: request.memoryMb,
        freeMb: host.freeMemoryMb,
        promisedMb: host.promised.memoryMb,
        dom0ReserveMb: reserve,
      },
    });
  const diskMb = request.diskGb * 1024;
  const storageMb = host.storageFreeMb - host.promised.diskMb;
  if (storageMb < diskMb)
    reasons.push({
      code: 'insufficient_storage',
      message: `needs ${diskMb} MiB of disk, ${Math.max(storageMb, 0)} MiB free`,
      data: { requestedMb: diskMb, freeMb: host.storageFreeMb, promisedMb: host.promised.diskMb },
    });
  const ratio = host.limits?.vcpuOvercommitRatio ?? options.vcpuOvercommitRatio;
  const vcpuLimit = Math.floor(host.nrCpus * ratio);
  const vcpusAfter = host.allocatedVcpus + host.promised.vcpus + request.vcpus;
  if (vcpusAfter > vcpuLimit)
    reasons.push({
      code: 'vcpu_overcommit',
      message: `would have ${vcpusAfter} vCPUs on ${host.nrCpus} CPUs, limit ${vcpuLimit} (ratio ${ratio})`,
      data: { vcpusAfter, nrCpus: host.nrCpus, ratio, limit: vcpuLimit },
    });
  return reasons;
}

/**
 * Soft anti-affinity outranks the weight (a host without a group member always wins), then
 * spread keeps the most memory free on the chosen host and pack the least (best fit), then
 * vCPU headroom, then the name, so equal hosts give the same answer every time.
 */
function compareCandidates(strategy: PlacementStrategy) {
  const sign = strategy === 'spread' ? -1 : 1;
  return (a: PlacementCandidate, b: PlacementCandidate): number =>
    a.groupMembers - b.groupMembers ||
    sign * (a.memoryLeftMb - b.memoryLeftMb) ||
    sign * (a.vcpusLeft - b.vcpusLeft) ||
    (a.hostName < b.hostName ? -1 : a.hostName > b.hostName ? 1 : 0);
}
