/** One IP and MAC held by an instance on a network. */
export interface IpAllocation {
  id: string;
  networkId: string;
  ip: string;
  mac: string;
  instanceId: string | null;
  allocatedAt: Date;
  releasedAt: Date | null;
}

/**
 * Proof that an instance's domain is gone. Release takes this rather than a bare id, so no
 * caller can free an address while the domain may still answer on it (a reused IP would then
 * reach the wrong VM).
 */
export interface DomainGoneConfirmation {
  instanceId: string;
  hostId: string;
  domainName: string;
  /** How the absence was established: `xl destroy` succeeded, or `xl list` no longer shows it. */
  evidence: 'destroyed' | 'not_listed';
  confirmedAt: Date;
}

/** Persistence of IP/MAC allocations; libs/inventory implements it on Postgres. */
export interface IpamStore {
  /**
   * The lowest free IP of the network's range and a fresh Xen MAC, never handed out twice even
   * under concurrency. Idempotent per (network, instance): a retried provision gets the same pair.
   */
  allocate(networkId: string, instanceId: string): Promise<IpAllocation>;
  /** Frees every live allocation of the instance; returns how many were released. */
  release(confirmation: DomainGoneConfirmation): Promise<number>;
  listLive(networkId: string): Promise<IpAllocation[]>;
}
