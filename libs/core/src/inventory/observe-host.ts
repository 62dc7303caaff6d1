import { type XenHost } from '../ports';
import { type HostObservation } from './host.port';
import { observeDomains } from './observed-domain';

/**
 * Reads a host's capacity and domains: `xl info`, `xl list`, `xl list -l` and `vgs`, issued
 * together because each is one SSH channel on a pooled connection and they do not depend on
 * one another.
 */
export async function observeHost(xen: XenHost): Promise<HostObservation> {
  const [info, list, details, vgs] = await Promise.all([
    xen.info(),
    xen.listDomains(),
    xen.listDomainDetails(),
    xen.volumeGroups(),
  ]);
  return {
    totalMemoryMb: info.totalMemoryMb,
    freeMemoryMb: info.freeMemoryMb,
    nrCpus: info.nrCpus,
    xenVersion: info.xenVersion,
    storageTotalMb: vgs.reduce((sum, vg) => sum + vg.sizeMb, 0),
    storageFreeMb: vgs.reduce((max, vg) => Math.max(max, vg.freeMb), 0),
    volumeGroups: vgs,
    domains: observeDomains(list, details),
  };
}
