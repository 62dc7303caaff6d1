import { type HostRecord } from '../inventory/host.port';
import { type PlacementHost, type PromisedCapacity } from './placement';

/** A request placed on a host whose domain may not be visible to `xl info` yet. */
export interface InFlightReservation {
  hostId: string;
  memoryMb: number;
  vcpus: number;
  diskGb: number;
  /** Known once the instance row exists; lets us stop counting it when its domain shows up. */
  domainName: string | null;
  antiAffinityGroup: string | null;
}

/** A live instance with its anti-affinity group, for counting group members per host. */
export interface PlacedInstance {
  hostId: string;
  antiAffinityGroup: string | null;
}

/**
 * Turns host rows plus in-flight reservations into placement input. A reservation whose
 * domain the last sync already saw is in `free_memory` already; counting it again would
 * shrink the host twice.
 */
export function placementHosts(
  hosts: readonly HostRecord[],
  reservations: readonly InFlightReservation[],
  placed: readonly PlacedInstance[],
): PlacementHost[] {
  return hosts.map((h) => {
    const seen = new Set(h.observedDomains.map((d) => d.name));
    const promised: PromisedCapacity = { memoryMb: 0, vcpus: 0, diskMb: 0 };
    const groups: Record<string, number> = {};
    for (const r of reservations) {
      if (r.hostId !== h.id) continue;
      if (r.antiAffinityGroup !== null) groups[r.antiAffinityGroup] = (groups[r.antiAffinityGroup] ?? 0) + 1;
      if (r.domainName !== null && seen.has(r.domainName)) continue;
      promised.memoryMb += r.memoryMb;
      promised.vcpus += r.vcpus;
      promised.diskMb += r.diskGb * 1024;
    }
    for (const p of placed) {
      if (p.hostId === h.id && p.antiAffinityGroup !== null)
        groups[p.antiAffinityGroup] = (groups[p.antiAffinityGroup] ?? 0) + 1;
    }
    return {
      id: h.id,
      name: h.name,
      status: h.status,
      maintenance: h.maintenance,
      placementBlockedReason: h.placementBlockedReason,
      freeMemoryMb: h.freeMemoryMb,
      nrCpus: h.nrCpus,
      storageFreeMb: h.storageFreeMb,
      allocatedVcpus: h.observedDomains.reduce((sum, d) => sum + d.vcpus, 0),
      promised,
      groupMembers: groups,
      limits: h.limits,
    };
  });
}
