import { type ObservedDomain } from './observed-domain';

/**
 * Drift between what Norm believes and what hosts report. Report-only: nothing here (or in
 * the sync loop) acts on it, because a wrong guess would destroy a customer's VM.
 */

export interface DriftHost {
  id: string;
  name: string;
  status: 'unknown' | 'online' | 'unreachable';
  /** When `observedDomains` was read; null when the host was never synced. */
  observedAt: Date | null;
  observedDomains: readonly ObservedDomain[];
}

export interface DriftInstance {
  id: string;
  name: string;
  domainName: string;
  hostId: string | null;
  state: string;
}

export type DriftEntry =
  | {
      kind: 'orphan_domain';
      /** Where and when it was seen, and what. */
      hostId: string;
      hostName: string;
      seenAt: Date;
      domain: ObservedDomain;
    }
  | {
      kind: 'vanished_instance';
      instanceId: string;
      instanceName: string;
      domainName: string;
      hostId: string;
      hostName: string;
      /** The sync that listed the host's domains without this one. */
      checkedAt: Date;
    }
  | {
      kind: 'wrong_host';
      instanceId: string;
      instanceName: string;
      domainName: string;
      expectedHostId: string | null;
      expectedHostName: string | null;
      hostId: string;
      hostName: string;
      seenAt: Date;
      domain: ObservedDomain;
    };

export type DriftKind = DriftEntry['kind'];

/** Instance states in which Norm owns a domain name (a domain may exist for it). */
const OWNED_STATES = new Set(['provisioning', 'running', 'stopping', 'stopped', 'decommissioning']);
/** Instance states in which Norm believes the domain runs, so its absence is drift. */
const EXPECTED_RUNNING = new Set(['running']);

/**
 * Compares the hosts' observed domains with Norm's instances. Hosts that are not online or
 * never synced give no evidence either way: an unreachable host hides its domains, it does
 * not prove them gone.
 */
export function diffDomains(hosts: readonly DriftHost[], instances: readonly DriftInstance[]): DriftEntry[] {
  const owned = new Map<string, DriftInstance>();
  for (const i of instances) if (OWNED_STATES.has(i.state)) owned.set(i.domainName, i);
  const hostById = new Map(hosts.map((h) => [h.id, h]));
  const observed = hosts.filter(
    (h): h is DriftHost & { observedAt: Date } => h.status === 'online' && h.observedAt !== null,
  );
  const entries: DriftEntry[] = [];
  const seenOn = new Map<string, Set<string>>();

  for (const host of observed) {
    for (const domain of host.observedDomains) {
      const instance = owned.get(domain.name);
      if (!instance) {
        entries.push({
          kind: 'orphan_domain',
          hostId: host.id,
          hostName: host.name,
          seenAt: host.observedAt,
          domain,
        });
        continue;
      }
      const hosts = seenOn.get(domain.name) ?? new Set<string>();
      hosts.add(host.id);
      seenOn.set(domain.name, hosts);
      if (instance.hostId !== host.id) {
        entries.push({
          kind: 'wrong_host',
          instanceId: instance.id,
          instanceName: instance.name,
          domainName: domain.name,
          expectedHostId: instance.hostId,
          expectedHostName: instance.hostId === null ? null : (hostById.get(instance.hostId)?.name ?? null),
          hostId: host.id,
          hostName: host.name,
          seenAt: host.observedAt,
          domain,
        });
      }
    }
  }

  for (const instance of owned.values()) {
    if (!EXPECTED_RUNNING.has(instance.state) || instance.hostId === null) continue;
    const host = hostById.get(instance.hostId);
    if (!host || host.status !== 'online' || host.observedAt === null) continue;
    const where = seenOn.get(instance.domainName);
    // Found elsewhere is already reported as wrong_host; vanished means seen nowhere at all.
    if (where?.has(host.id) || (where && where.size > 0)) continue;
    entries.push({
      kind: 'vanished_instance',
      instanceId: instance.id,
      instanceName: instance.name,
      domainName: instance.domainName,
      hostId: host.id,
      hostName: host.name,
      checkedAt: host.observedAt,
    });
  }
  return entries;
}
