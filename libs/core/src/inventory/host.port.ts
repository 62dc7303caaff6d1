import { type HostEndpoint, type VolumeGroup } from '../ports';
import { type ObservedDomain } from './observed-domain';

export type HostStatus = 'unknown' | 'online' | 'unreachable';

/** Per-host overrides of fleet-wide placement settings. */
export interface HostLimits {
  dom0ReserveMb?: number;
  vcpuOvercommitRatio?: number;
}

/** Everything one sync (or a registration probe) learns about a host. */
export interface HostObservation {
  totalMemoryMb: number;
  freeMemoryMb: number;
  nrCpus: number;
  xenVersion: string;
  storageTotalMb: number;
  /** The largest single volume group's free space: a disk must fit in one VG. */
  storageFreeMb: number;
  volumeGroups: VolumeGroup[];
  domains: ObservedDomain[];
}

export interface HostRecord {
  id: string;
  name: string;
  address: string;
  port: number;
  sshUser: string;
  sudo: boolean;
  hostKeyFingerprint: string;
  labels: Record<string, string>;
  status: HostStatus;
  maintenance: boolean;
  placementBlockedReason: string | null;
  consecutiveSyncFailures: number;
  limits: HostLimits;
  totalMemoryMb: number | null;
  freeMemoryMb: number | null;
  nrCpus: number | null;
  xenVersion: string | null;
  storageTotalMb: number | null;
  storageFreeMb: number | null;
  volumeGroups: VolumeGroup[];
  observedDomains: ObservedDomain[];
  lastSyncAt: Date | null;
  lastSyncError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewHost {
  name: string;
  address: string;
  port: number;
  sshUser: string;
  sudo: boolean;
  hostKeyFingerprint: string;
  labels: Record<string, string>;
  limits: HostLimits;
}

export interface HostPatch {
  labels?: Record<string, string>;
  limits?: HostLimits;
  /** null clears a block set after repeated provisioning failures. */
  placementBlockedReason?: string | null;
}

/** What a sync pass needs to know of a host: how to reach it and the status it had. */
export type HostSyncTarget = Pick<
  HostRecord,
  'id' | 'name' | 'address' | 'port' | 'sshUser' | 'sudo' | 'hostKeyFingerprint' | 'status'
>;

export interface HostSyncSuccess {
  hostId: string;
  observation: HostObservation;
  at: Date;
}

/** How many finished rows a host deletion detached from the host. */
export interface HostDetached {
  instances: number;
  requests: number;
}

/** What the sync loop needs from persistence. */
export interface HostSyncStore {
  /** Only the columns a pass uses: the last observations are not read back every interval. */
  listForSync(): Promise<HostSyncTarget[]>;
  /**
   * Replaces each host's current state and marks it online, resetting its failure count, in
   * one statement (one commit) for the whole batch.
   */
  recordSyncSuccesses(batch: readonly HostSyncSuccess[]): Promise<void>;
  /** Counts one more consecutive failure; at `unreachableAfter` the host becomes unreachable. */
  recordSyncFailure(
    hostId: string,
    error: string,
    at: Date,
    unreachableAfter: number,
  ): Promise<{ status: HostStatus; consecutiveFailures: number }>;
}

export interface HostStore extends HostSyncStore {
  /** Inserts a probed host as online with its first observation; Conflict when the name is taken. */
  create(host: NewHost, observation: HostObservation, at: Date): Promise<HostRecord>;
  /** `forUpdate` holds the row until the transaction ends (a placement naming it then waits). */
  get(id: string, options?: { forUpdate?: boolean }): Promise<HostRecord | undefined>;
  list(): Promise<HostRecord[]>;
  update(id: string, patch: HostPatch): Promise<HostRecord | undefined>;
  setMaintenance(id: string, on: boolean): Promise<HostRecord | undefined>;
  /**
   * Deletes the host, first detaching the finished instances and requests that name it
   * (their host becomes null; the audit chain keeps where they ran). Conflict when a live
   * instance or an in-flight request still refers to it; undefined when it does not exist.
   */
  delete(id: string): Promise<HostDetached | undefined>;
}

export function endpointOf(
  host: Pick<HostRecord, 'name' | 'address' | 'port' | 'sshUser' | 'hostKeyFingerprint' | 'sudo'>,
): HostEndpoint {
  return {
    name: host.name,
    address: host.address,
    port: host.port,
    user: host.sshUser,
    hostKeyFingerprint: host.hostKeyFingerprint,
    sudo: host.sudo,
  };
}
