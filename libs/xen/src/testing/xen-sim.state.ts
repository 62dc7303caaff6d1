/**
 * State of one simulated Xen 4.17 host: domains, the LVM volume group(s), memory and time.
 * The xl and LVM command simulators (xl.sim.ts, lvm.sim.ts) read and change this state;
 * the transports (in-process ssh2, real sshd) never touch it directly.
 *
 * Facts that shape the model come from shared/xen/XL.md and shared/xenlab/README.md
 * (a real Debian 4.17 host): domids only ever grow, also for failed creates; a guest that
 * is shut down shows `---s--` until the toolstack's monitor destroys or restarts it.
 */

/** Milliseconds since an arbitrary epoch; injectable so tests can step time by hand. */
export interface SimClock {
  now(): number;
}

export const realClock: SimClock = { now: () => Date.now() };

/** A clock that only moves when told to; handy for uptime/CPU-time and shutdown tests. */
export class ManualClock implements SimClock {
  constructor(private current = 1_700_000_000_000) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
  set(ms: number): void {
    this.current = ms;
  }
}

export interface SimResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export type LifecycleAction =
  | 'destroy'
  | 'restart'
  | 'rename-restart'
  | 'preserve'
  | 'coredump-destroy'
  | 'coredump-restart'
  | 'soft-reset';

export interface SimDisk {
  target: string;
  vdev: string;
  format: string;
  readwrite: boolean;
  backend: 'phy' | 'qdisk';
}

export interface SimNic {
  devid: number;
  mac: string;
  bridge: string;
  ip?: string;
  model?: string;
  vifname?: string;
  script: string;
}

export interface SimDomain {
  domid: number;
  name: string;
  uuid: string;
  type: 'pv' | 'pvh' | 'hvm';
  memoryMb: number;
  maxMemoryMb: number;
  vcpus: number;
  maxVcpus: number;
  kernel?: string;
  ramdisk?: string;
  cmdline?: string;
  bootloader?: string;
  disks: SimDisk[];
  nics: SimNic[];
  onPoweroff: LifecycleAction;
  onReboot: LifecycleAction;
  onWatchdog: LifecycleAction;
  onCrash: LifecycleAction;
  /** Clock ms when the domain was built. */
  createdAt: number;
  /** CPU seconds accumulated up to `cpuSince`. */
  cpuSeconds: number;
  cpuSince: number;
  /** CPU seconds consumed per wall-clock second while runnable (dom0 works, guests idle). */
  load: number;
  paused: boolean;
  /** A shutdown/reboot request in flight; `reachedAt` once the guest has actually shut down. */
  shutdown?: { reason: 'poweroff' | 'reboot'; requestedAt: number; reachedAt?: number };
  /** Fault: the guest OS ignores shutdown/reboot requests (e.g. hung or no PV drivers). */
  ignoresShutdown: boolean;
  /** Path given to `xl create` and the text read from it (kept for `xl list -l`). */
  configPath?: string;
  configText?: string;
}

export interface SimVolumeGroup {
  name: string;
  extentMb: number;
  extentCount: number;
}

export interface SimLogicalVolume {
  vg: string;
  name: string;
  /** Size in MiB as `lvs` reports it (for a snapshot: its copy-on-write area). */
  sizeMb: number;
  origin?: string;
}

export interface SimTimings {
  /** From `xl shutdown` to the guest reaching `---s--` (real: ~2.4 s). */
  shutdownMs: number;
  /** From `---s--` to the monitor acting on `on_poweroff`/`on_reboot` (real: ~2 s). */
  cleanupMs: number;
  /** Poll interval of waiting commands (`xl shutdown -w`), in real milliseconds. */
  pollMs: number;
}

export interface SimHostOptions {
  /** uname nodename, `xl info` host. */
  hostname?: string;
  clock?: SimClock;
  /** Real-time sleep, used for injected latency and polling; replaceable in tests. */
  sleep?: (ms: number) => Promise<void>;
  /** Physical memory in MiB as `xl info` total_memory reports it. */
  totalMemoryMb?: number;
  /** Memory Xen itself keeps (heap, frame table); never free for guests. */
  xenReservedMb?: number;
  dom0MemoryMb?: number;
  dom0Vcpus?: number;
  nrCpus?: number;
  cpuMhz?: string;
  xenExtra?: string;
  virtCaps?: string[];
  /** Bridges that exist in dom0; a vif on another bridge fails its hotplug script. */
  bridges?: string[];
  volumeGroups?: Array<{ name: string; sizeMb: number; extentMb?: number }>;
  /** Volumes present at boot (golden images), created as plain LVs. */
  goldenVolumes?: Array<{ vg?: string; name: string; sizeMb: number }>;
  /** Where Norm uploads configs; created in the in-memory filesystem. */
  configDir?: string;
  /** Home directory of the login user (SFTP REALPATH of `.`). */
  homeDir?: string;
  /**
   * True when the login user is unprivileged (like `norm` on xenlab): xl and the LVM tools
   * are then only reachable through `sudo -n`, as /usr/sbin is not on the user's PATH.
   */
  requireSudo?: boolean;
  timings?: Partial<SimTimings>;
}

export const DEFAULT_TIMINGS: SimTimings = { shutdownMs: 200, cleanupMs: 200, pollMs: 10 };

/** Reads a config file for `xl create`; undefined means ENOENT. */
export interface SimFileReader {
  readText(path: string, cwd: string): { ok: true; text: string } | { ok: false; error: string };
}

export function formatLvmMb(mb: number): string {
  return mb.toFixed(2);
}

/** The domain's CPU time in seconds at `now` (paused or shut-down domains do not run). */
export function cpuTimeAt(dom: SimDomain, now: number): number {
  const runnable = !dom.paused && dom.shutdown?.reachedAt === undefined;
  return dom.cpuSeconds + (runnable ? (Math.max(0, now - dom.cpuSince) / 1000) * dom.load : 0);
}

/** Folds the CPU time consumed so far into `cpuSeconds`, before a state change stops the clock. */
export function foldCpuTime(dom: SimDomain, now: number): void {
  dom.cpuSeconds = cpuTimeAt(dom, now);
  dom.cpuSince = now;
}

export interface SimMemory {
  totalMb: number;
  freeMb: number;
}

/**
 * Everything a simulated host knows. Lifecycle transitions are evaluated lazily against the
 * clock (`settle`) at the start of every command, so a fake clock fully controls them.
 */
export class XenSimState {
  readonly hostname: string;
  readonly clock: SimClock;
  readonly timings: SimTimings;
  readonly totalMemoryMb: number;
  readonly xenReservedMb: number;
  readonly nrCpus: number;
  readonly cpuMhz: string;
  readonly xenExtra: string;
  readonly virtCaps: string[];
  readonly bridges: string[];
  readonly requireSudo: boolean;
  readonly bootedAt: number;
  /** Memory taken by something outside Norm's view (fault: "low memory"). */
  externalUsedMb = 0;
  nextDomid = 1;
  readonly domains = new Map<number, SimDomain>();
  readonly vgs = new Map<string, SimVolumeGroup>();
  readonly lvs: SimLogicalVolume[] = [];

  constructor(opts: SimHostOptions = {}) {
    this.hostname = opts.hostname ?? 'xen1';
    this.clock = opts.clock ?? realClock;
    this.timings = { ...DEFAULT_TIMINGS, ...opts.timings };
    this.totalMemoryMb = opts.totalMemoryMb ?? 16383;
    this.xenReservedMb = opts.xenReservedMb ?? 187;
    this.nrCpus = opts.nrCpus ?? 4;
    this.cpuMhz = opts.cpuMhz ?? '2394.458';
    this.xenExtra = opts.xenExtra ?? '.5';
    this.virtCaps = opts.virtCaps ?? [
      'pv',
      'hvm',
      'hvm_directio',
      'pv_directio',
      'hap',
      'shadow',
      'iommu_hap_pt_share',
      'gnttab-v1',
      'gnttab-v2',
    ];
    this.bridges = opts.bridges ?? ['xenbr0'];
    this.requireSudo = opts.requireSudo ?? false;
    const now = this.clock.now();
    // dom0 booted a while ago, so its uptime and CPU time look like a live host's.
    this.bootedAt = now - 3_600_000;
    const dom0Vcpus = opts.dom0Vcpus ?? 2;
    const dom0Mb = opts.dom0MemoryMb ?? 1024;
    this.domains.set(0, {
      domid: 0,
      name: 'Domain-0',
      uuid: '00000000-0000-0000-0000-000000000000',
      type: 'pv',
      memoryMb: dom0Mb,
      maxMemoryMb: dom0Mb,
      vcpus: dom0Vcpus,
      maxVcpus: dom0Vcpus,
      disks: [],
      nics: [],
      onPoweroff: 'destroy',
      onReboot: 'restart',
      onWatchdog: 'destroy',
      onCrash: 'destroy',
      createdAt: this.bootedAt,
      cpuSeconds: 0,
      cpuSince: this.bootedAt,
      load: 0.05 * dom0Vcpus,
      paused: false,
      ignoresShutdown: false,
    });
    for (const vg of opts.volumeGroups ?? [{ name: 'vg0', sizeMb: 512 * 1024 }]) {
      const extentMb = vg.extentMb ?? 4;
      // The PV's metadata area (pe_start, 1 MiB) costs one extent: 512 GiB -> 524284.00 MiB.
      this.vgs.set(vg.name, { name: vg.name, extentMb, extentCount: Math.floor((vg.sizeMb - 1) / extentMb) });
    }
    const firstVg = [...this.vgs.keys()][0] ?? 'vg0';
    for (const g of opts.goldenVolumes ?? [{ name: 'golden-tiny', sizeMb: 64 }]) {
      this.lvs.push({ vg: g.vg ?? firstVg, name: g.name, sizeMb: g.sizeMb });
    }
  }

  domainList(): SimDomain[] {
    return [...this.domains.values()].sort((a, b) => a.domid - b.domid);
  }

  findByName(name: string): SimDomain | undefined {
    return this.domainList().find((d) => d.name === name);
  }

  usedByDomainsMb(): number {
    let sum = 0;
    for (const d of this.domains.values()) sum += d.memoryMb;
    return sum;
  }

  memory(): SimMemory {
    const free = this.totalMemoryMb - this.xenReservedMb - this.usedByDomainsMb() - this.externalUsedMb;
    return { totalMb: this.totalMemoryMb, freeMb: Math.max(0, free) };
  }

  /** Fault: make `free_memory` read exactly `mb` from now on (until domains change it). */
  setFreeMemoryMb(mb: number): void {
    this.externalUsedMb = 0;
    this.externalUsedMb = this.memory().freeMb - mb;
  }

  /** Applies every lifecycle transition that is due by the clock's current time. */
  settle(): void {
    const now = this.clock.now();
    for (const dom of this.domainList()) {
      const sd = dom.shutdown;
      if (!sd || dom.ignoresShutdown) continue;
      if (sd.reachedAt === undefined && now >= sd.requestedAt + this.timings.shutdownMs) {
        foldCpuTime(dom, sd.requestedAt + this.timings.shutdownMs);
        sd.reachedAt = sd.requestedAt + this.timings.shutdownMs;
      }
      if (sd.reachedAt !== undefined && now >= sd.reachedAt + this.timings.cleanupMs) {
        const action = sd.reason === 'poweroff' ? dom.onPoweroff : dom.onReboot;
        const at = sd.reachedAt + this.timings.cleanupMs;
        switch (action) {
          case 'preserve':
            break;
          case 'destroy':
          case 'coredump-destroy':
            this.domains.delete(dom.domid);
            break;
          case 'restart':
          case 'rename-restart':
          case 'coredump-restart':
          case 'soft-reset':
            // xl's monitor destroys the domain and builds it again: same name, new domid.
            this.domains.delete(dom.domid);
            this.domains.set(this.nextDomid, {
              ...dom,
              domid: this.nextDomid,
              createdAt: at,
              cpuSeconds: 0,
              cpuSince: at,
              paused: false,
              shutdown: undefined,
            });
            this.nextDomid++;
            break;
        }
      }
    }
  }

  /** Resolves `/dev/VG/LV` or `/dev/mapper/VG-LV` to a logical volume of this host. */
  resolveLvPath(target: string): SimLogicalVolume | undefined {
    const direct = /^\/dev\/([^/]+)\/([^/]+)$/.exec(target);
    if (direct && direct[1] !== 'mapper')
      return this.lvs.find((lv) => lv.vg === direct[1] && lv.name === direct[2]);
    const mapper = /^\/dev\/mapper\/(.+)$/.exec(target);
    if (mapper?.[1]) {
      const dm = mapper[1];
      return this.lvs.find((lv) => `${lv.vg.replace(/-/g, '--')}-${lv.name.replace(/-/g, '--')}` === dm);
    }
    return undefined;
  }

  /** Domains (alive, including shut-down ones not yet cleaned up) with the LV as a disk. */
  domainsUsingLv(lv: SimLogicalVolume): SimDomain[] {
    return this.domainList().filter((d) => d.disks.some((disk) => this.resolveLvPath(disk.target) === lv));
  }
}
