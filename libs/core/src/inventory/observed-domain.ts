import { type DomainDetail, type DomainSummary } from '../ports';

/**
 * What a sync saw of one domain: the `xl list` row joined with its `xl list -l` details.
 * Stored as the host's current state (replaced on every sync, never appended).
 */
export interface ObservedDomain {
  name: string;
  domid: number;
  memoryMb: number;
  vcpus: number;
  /** The six `xl list` state characters, e.g. `-b----`. */
  state: string;
  uuid?: string;
  macs: string[];
  dying: boolean;
}

/** Domain-0 is Xen's control domain, never a guest Norm could own. */
export const CONTROL_DOMAIN = 'Domain-0';

export function observeDomains(
  list: readonly DomainSummary[],
  details: readonly DomainDetail[],
): ObservedDomain[] {
  const byDomid = new Map(details.map((d) => [d.domid, d]));
  return list
    .filter((d) => d.domid !== 0 && d.name !== CONTROL_DOMAIN)
    .map((d) => {
      // Join by domid and confirm the name: a domain recreated between the two commands gets a new domid.
      const detail = byDomid.get(d.domid);
      const same = detail !== undefined && detail.name === d.name;
      const macs = same ? detail.nics.flatMap((n) => (n.mac ? [n.mac.toLowerCase()] : [])) : [];
      const out: ObservedDomain = {
        name: d.name,
        domid: d.domid,
        memoryMb: d.memoryMb,
        vcpus: d.vcpus,
        state: d.state,
        macs,
        dying: d.flags.dying,
      };
      if (same && detail.uuid) out.uuid = detail.uuid;
      return out;
    })
    .sort((a, b) => a.domid - b.domid);
}
