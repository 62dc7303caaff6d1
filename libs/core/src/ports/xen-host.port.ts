/**
 * The Xen boundary as the domain sees it. libs/xen implements it over SSH (and its
 * simulator implements the far side); libs/core never knows how commands travel.
 * Sizes are in MiB unless the name says otherwise.
 */

/** Capacity facts from `xl info`. Keys missing on old Xen versions are undefined. */
export interface XenInfo {
  host: string;
  release?: string;
  machine?: string;
  nrCpus: number;
  coresPerSocket?: number;
  threadsPerCore?: number;
  cpuMhz?: number;
  virtCaps: string[];
  totalMemoryMb: number;
  freeMemoryMb: number;
  outstandingClaimsMb?: number;
  xenMajor: number;
  xenMinor: number;
  xenExtra: string;
  /** `major.minor` + extra, derived on versions before 4.4 that lack the key. */
  xenVersion: string;
  xenScheduler?: string;
  xenCommandline?: string;
  buildId?: string;
  /** Every key/value exactly as read, trimmed, for keys this type does not name. */
  raw: Record<string, string>;
}

/** Six positional state flags of `xl list`: r b p s <reason> d. */
export interface DomainStateFlags {
  running: boolean;
  blocked: boolean;
  paused: boolean;
  shutdown: boolean;
  /** Meaningful only when `shutdown`: poweroff, reboot, suspend, crash, watchdog, soft_reset. */
  shutdownReason?: 'poweroff' | 'reboot' | 'suspend' | 'crash' | 'watchdog' | 'soft_reset' | 'unknown';
  dying: boolean;
}

/** One row of `xl list`. */
export interface DomainSummary {
  name: string;
  domid: number;
  memoryMb: number;
  vcpus: number;
  /** The raw six characters, e.g. `-b----`. */
  state: string;
  flags: DomainStateFlags;
  cpuTimeS: number;
}

/** Configuration facts of one domain from `xl list -l`. */
export interface DomainDetail {
  domid: number;
  name: string;
  uuid?: string;
  type?: string;
  maxVcpus?: number;
  maxMemoryKb?: number;
  targetMemoryKb?: number;
  kernel?: string;
  ramdisk?: string;
  cmdline?: string;
  bootloader?: string;
  disks: Array<{ target?: string; vdev?: string; format?: string; backend?: string; readwrite?: boolean }>;
  nics: Array<{ mac?: string; bridge?: string; ip?: string; devid?: number }>;
}

export type BootMethod =
  { kind: 'pygrub' } | { kind: 'kernel'; kernel: string; ramdisk?: string; extra?: string; root?: string };

/** What Norm asks Xen to run. Every value is validated by the renderer before it reaches a host. */
export interface DomainConfig {
  name: string;
  uuid?: string;
  vcpus: number;
  memoryMb: number;
  boot: BootMethod;
  disks: Array<{ target: string; vdev: string; access: 'rw' | 'ro'; format?: 'raw' | 'qcow2' }>;
  vifs: Array<{ mac: string; bridge: string; ip?: string }>;
  onPoweroff?: 'destroy' | 'restart' | 'preserve';
  onReboot?: 'destroy' | 'restart' | 'preserve';
  onCrash?: 'destroy' | 'restart' | 'preserve';
}

/**
 * The files of a NoCloud seed volume (cloud-init's NoCloud datasource): a small ISO 9660
 * volume labelled `cidata`, attached read-only beside the root disk of a disk-boot guest,
 * whose kernel command line Norm cannot set. `userData` carries the instance token in clear.
 */
export interface NoCloudSeed {
  metaData: string;
  userData: string;
  /** Network config version 2; absent leaves the guest to its image's own (usually DHCP). */
  networkConfig?: string;
}

export interface VolumeGroup {
  name: string;
  sizeMb: number;
  freeMb: number;
  pvCount?: number;
  lvCount?: number;
}

export interface LogicalVolume {
  vg: string;
  name: string;
  sizeMb: number;
  /** Set when this volume is a snapshot of another. */
  origin?: string;
  attr?: string;
}

/** Idempotent operations report whether they changed anything or found it already done. */
export interface IdempotentResult {
  changed: boolean;
}

export interface CreateVolumeRequest {
  vg: string;
  name: string;
  sizeMb: number;
  /** Snapshot of this volume in the same VG (a golden image) instead of an empty volume. */
  snapshotOf?: string;
}

export interface XenHost {
  /** The host's name as registered, used in errors and logs. */
  readonly hostName: string;
  info(): Promise<XenInfo>;
  listDomains(): Promise<DomainSummary[]>;
  listDomainDetails(): Promise<DomainDetail[]>;
  /**
   * Renders the config, uploads it to the Norm-owned config directory, runs `xl create`. With
   * a seed, the seed volume is built and placed beside the config first (root-only, like it)
   * and attached as one more read-only disk. Nothing is uploaded when the domain exists.
   */
  createDomain(cfg: DomainConfig, seed?: NoCloudSeed): Promise<IdempotentResult & { domid?: number }>;
  /** `xl shutdown -w` bounded by `timeoutMs`, then `xl destroy`. Gone already is success. */
  shutdownDomain(name: string, timeoutMs: number): Promise<IdempotentResult & { forced: boolean }>;
  destroyDomain(name: string): Promise<IdempotentResult>;
  rebootDomain(name: string): Promise<void>;
  pauseDomain(name: string): Promise<void>;
  unpauseDomain(name: string): Promise<void>;
  volumeGroups(): Promise<VolumeGroup[]>;
  logicalVolumes(vg?: string): Promise<LogicalVolume[]>;
  createVolume(req: CreateVolumeRequest): Promise<IdempotentResult>;
  removeVolume(vg: string, name: string): Promise<IdempotentResult>;
  /** Removes the uploaded config of a domain and its seed volume, if any; absent is success. */
  removeDomainConfig(name: string): Promise<IdempotentResult>;
}

/** Connection facts for one host, as stored at registration. */
export interface HostEndpoint {
  name: string;
  address: string;
  port: number;
  user: string;
  /** `SHA256:<base64 without padding>`, exactly as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** Prefix every command with `sudo -n` (a non-root user with a sudoers drop-in). */
  sudo: boolean;
}

/** Opens XenHost handles; the implementation pools connections per host. */
export interface XenHostFactory {
  forHost(endpoint: HostEndpoint): XenHost;
  /** Reads a host's current key fingerprint for trust-on-first-use registration. */
  readFingerprint(address: string, port: number, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}
