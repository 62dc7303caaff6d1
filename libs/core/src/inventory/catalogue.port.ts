import { type IpamStore } from '../ipam/ipam.port';
import { type AuditLog } from '../audit';
import { type DriftInstance } from './drift';
import { type HostStore } from './host.port';
import { type PlacementHost } from '../placement/placement';

export interface GoldenVolume {
  /** Set: this host only. Absent: any host with a volume group named `vg`. */
  hostId?: string;
  vg: string;
  lv: string;
}

export type ImageBoot =
  | { method: 'pygrub' }
  | { method: 'kernel'; kernel: string; ramdisk: string | null; kernelArgs: string | null };

export interface ImageRecord {
  id: string;
  name: string;
  osLabel: string;
  boot: ImageBoot;
  defaultDiskGb: number;
  goldenVolumes: GoldenVolume[];
  createdAt: Date;
  updatedAt: Date;
}

export type NewImage = Omit<ImageRecord, 'id' | 'createdAt' | 'updatedAt'>;

export interface ImageStore {
  create(image: NewImage): Promise<ImageRecord>;
  get(id: string): Promise<ImageRecord | undefined>;
  list(): Promise<ImageRecord[]>;
  update(id: string, patch: Partial<NewImage>): Promise<ImageRecord | undefined>;
  /** False when it does not exist. Conflict while a VM request still names it. */
  delete(id: string): Promise<boolean>;
}

export interface NetworkRecord {
  id: string;
  name: string;
  bridge: string;
  cidr: string;
  gateway: string | null;
  rangeStart: string;
  rangeEnd: string;
  createdAt: Date;
}

export type NewNetwork = Omit<NetworkRecord, 'id' | 'createdAt'>;

export interface NetworkUsage {
  size: number;
  allocated: number;
}

export interface NetworkStore {
  create(network: NewNetwork): Promise<NetworkRecord>;
  get(id: string): Promise<NetworkRecord | undefined>;
  list(): Promise<NetworkRecord[]>;
  usage(id: string): Promise<NetworkUsage>;
  /** False when it does not exist. Conflict while any allocation (live or released) refers to it. */
  delete(id: string): Promise<boolean>;
}

/** Norm's instances as drift and host deletion see them. */
export interface InstanceView {
  listForDrift(hostId?: string): Promise<DriftInstance[]>;
  /**
   * What Norm still has on a host: instances that hold a domain there (provisioning through
   * decommissioning) and requests placed there whose instance may not exist yet. Finished
   * rows (decommissioned or failed instances, ended requests) are history, not presence.
   */
  liveOnHost(hostId: string): Promise<{ instances: number; requests: number }>;
}

/** What placement reads: every host as placement weighs it, in one read. */
export interface PlacementView {
  /**
   * Every host with its last-synced capacity and what is promised on it:
   * - `promised`: requests placed there and still in flight (approved, provisioning) whose
   *   domain the last sync did not see yet (once seen, `xl info` counts it already; counting
   *   it again would shrink the host twice);
   * - `allocatedVcpus`: the vCPUs of the guest domains the last sync saw;
   * - `groupMembers`: for `group` only (placement weighs no other), the members the host
   *   holds, in flight or live.
   */
  candidates(group: string | null): Promise<PlacementHost[]>;
}

/** One transaction over the inventory, with the audit event that describes the change. */
export interface InventoryTx {
  hosts: HostStore;
  images: ImageStore;
  networks: NetworkStore;
  ipam: IpamStore;
  instances: InstanceView;
  placement: PlacementView;
  audit: AuditLog;
  /**
   * Serialises placement decisions across API and worker replicas until the transaction ends,
   * so two requests read capacity one after the other and cannot both take the last gigabyte.
   */
  lockPlacement(): Promise<void>;
}

export interface InventoryUnitOfWork {
  /** Read-only work may use this too; it simply commits nothing. */
  run<T>(work: (tx: InventoryTx) => Promise<T>): Promise<T>;
}
