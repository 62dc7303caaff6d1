import { runInstall, type SimFileInstaller } from './install.sim';
import { runLvcreate, runLvremove, runLvs, runVgs } from './lvm.sim';
import { MemoryFs } from './memory-fs.sim';
import { runXl } from './xl.sim';
import { XenSimState, type SimFileReader, type SimHostOptions, type SimResult } from './xen-sim.state';

/**
 * One simulated Xen host: executes an argv the way dom0's shell would run it (optionally
 * through `sudo -n`), keeps a log of what it received, and carries the fault switches tests
 * flip. Both transports (in-process ssh2 and real sshd) call `exec`, so state, log and
 * faults are the same whichever way a command arrived.
 */
export interface SimCommandRecord {
  /** Clock ms when the command arrived. */
  at: number;
  /** The argv as received, including a `sudo -n` prefix if there was one. */
  argv: string[];
  /** The command run after stripping `sudo -n`. */
  command: string[];
  sudo: boolean;
  via: 'direct' | 'ssh' | 'openssh';
  cwd: string;
}

export interface SimExecOptions {
  via?: SimCommandRecord['via'];
  cwd?: string;
  /** Overrides the host's files (the sshd mode reads and installs on the real filesystem). */
  files?: SimFileReader & SimFileInstaller;
}

export type CommandMatcher = (argv: readonly string[]) => boolean;

/** Thrown by `exec` when a fault dropped the connection mid-command; transports swallow it. */
export class SimConnectionDropped extends Error {
  constructor() {
    super('simulated connection drop');
  }
}

/** Network-level fault hooks, supplied by whichever transport fronts the host. */
export interface SimNetworkControl {
  dropConnections(): void;
  setDown(down: boolean): Promise<void>;
  setHung(hung: boolean): void;
  changeHostKey(): Promise<string>;
}

export interface SimHang {
  /** Lets the held command run (normally) and answer. */
  release(): void;
  /** Resolves once a command has been caught by this hang. */
  readonly caught: Promise<readonly string[]>;
}

interface PendingFailure {
  remaining: number;
  result: SimResult;
  match?: CommandMatcher;
}

interface PendingHang {
  match?: CommandMatcher;
  released: Promise<void>;
  release: () => void;
  onCaught: (argv: readonly string[]) => void;
  used: boolean;
}

/** The sudoers drop-in's commands (ansible/roles/xen_host/vars/main.yml), plus the test helper. */
const SUDO_ALLOWED = new Set(['xl', 'lvcreate', 'lvremove', 'lvs', 'vgs', 'install', 'norm-argv']);
/** On the login user's PATH (/usr/bin), so found without sudo, but only root may chown. */
const ON_USER_PATH = new Set(['install']);

export class SimFaults {
  latencyMs = 0;
  private failures: PendingFailure[] = [];
  private hangs: PendingHang[] = [];
  private drops: Array<{ match?: CommandMatcher }> = [];
  private network?: SimNetworkControl;

  constructor(private readonly host: SimulatedXenHost) {}

  /** Adds `ms` of latency before every command answers (0 turns it off). */
  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  /** The next `count` matching commands fail with this result instead of running. */
  failNext(count: number, result: Partial<SimResult> = {}, match?: CommandMatcher): void {
    this.failures.push({
      remaining: count,
      result: {
        stdout: result.stdout ?? '',
        stderr: result.stderr ?? 'simulated failure\n',
        exitCode: result.exitCode ?? 1,
      },
      match,
    });
  }

  /** The next matching command does not answer until `release()` is called. */
  hangNext(match?: CommandMatcher): SimHang {
    let release = (): void => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let onCaught: (argv: readonly string[]) => void = () => {};
    const caught = new Promise<readonly string[]>((resolve) => {
      onCaught = resolve;
    });
    this.hangs.push({ match, released, release, onCaught, used: false });
    return { release, caught };
  }

  /** Releases every held command (and discards unused hang requests). */
  releaseAll(): void {
    for (const h of this.hangs) h.release();
    this.hangs = [];
  }

  /** The next matching command drops the whole connection instead of answering. */
  dropNextCommand(match?: CommandMatcher): void {
    this.drops.push({ match });
  }

  /** Makes `xl info` report `mb` of free memory, so creates beyond it fail out of memory. */
  setFreeMemoryMb(mb: number): void {
    this.host.state.setFreeMemoryMb(mb);
  }

  /** The named guest ignores shutdown/reboot requests (stays `-b----`) until turned off. */
  ignoreShutdown(domainName: string, ignore = true): void {
    const dom = this.host.state.findByName(domainName);
    if (!dom) throw new Error(`no domain ${domainName}`);
    dom.ignoresShutdown = ignore;
  }

  /** Clears command-level faults (latency, failures, drops) and releases hangs. */
  reset(): void {
    this.latencyMs = 0;
    this.failures = [];
    this.drops = [];
    this.releaseAll();
  }

  attachNetwork(control: SimNetworkControl): void {
    this.network = control;
  }

  private net(): SimNetworkControl {
    if (!this.network)
      throw new Error('network faults need a transport: start the host with startSimulatedFleet or a server');
    return this.network;
  }

  /** Closes every open connection to the host (TCP FIN/RST), now. */
  dropConnections(): void {
    this.net().dropConnections();
  }

  /** Host down: open connections are cut and new ones are refused (ECONNREFUSED). */
  hostDown(): Promise<void> {
    return this.net().setDown(true);
  }

  hostUp(): Promise<void> {
    return this.net().setDown(false);
  }

  /** Host hangs: TCP stays up but nothing is read or answered, old or new connections. */
  hostHang(): void {
    this.net().setHung(true);
  }

  hostResume(): void {
    this.net().setHung(false);
  }

  /** Generates a new host key; returns the new `SHA256:` fingerprint. */
  changeHostKey(): Promise<string> {
    return this.net().changeHostKey();
  }

  /**
   * @internal
   * Which faults hit a command is decided when it arrives, before any injected latency:
   * "the next N commands" are the next N to arrive, so a command still sleeping out its
   * latency after its caller gave up cannot take a fault meant for a later one.
   */
  async apply(argv: readonly string[], onDrop: () => void): Promise<SimResult | undefined> {
    const hang = this.hangs.find((h) => !h.used && (!h.match || h.match(argv)));
    if (hang) {
      hang.used = true;
      hang.onCaught(argv);
    }
    const dropAt = this.drops.findIndex((d) => !d.match || d.match(argv));
    const drop = dropAt >= 0;
    if (drop) this.drops.splice(dropAt, 1);
    const failure = drop
      ? undefined
      : this.failures.find((f) => f.remaining > 0 && (!f.match || f.match(argv)));
    if (failure) {
      failure.remaining--;
      if (failure.remaining === 0) this.failures = this.failures.filter((f) => f !== failure);
    }
    if (this.latencyMs > 0) await this.host.sleep(this.latencyMs);
    if (hang) {
      await hang.released;
      this.hangs = this.hangs.filter((h) => h !== hang);
    }
    if (drop) {
      onDrop();
      throw new SimConnectionDropped();
    }
    return failure ? { ...failure.result } : undefined;
  }
}

export class SimulatedXenHost {
  readonly state: XenSimState;
  /** The host's own filesystem (what SFTP writes in the in-process mode). */
  readonly fs: MemoryFs;
  readonly configDir: string;
  readonly homeDir: string;
  readonly faults: SimFaults;
  readonly log: SimCommandRecord[] = [];
  readonly sleep: (ms: number) => Promise<void>;
  private dropListeners = new Set<() => void>();

  constructor(opts: SimHostOptions = {}) {
    this.state = new XenSimState(opts);
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.fs = new MemoryFs(() => Math.floor(this.state.clock.now() / 1000));
    this.configDir = opts.configDir ?? '/var/lib/norm/domains';
    this.homeDir = opts.homeDir ?? '/home/norm';
    this.fs.mkdirp(this.configDir, 0o750);
    this.fs.mkdirp(this.homeDir);
    this.faults = new SimFaults(this);
  }

  get hostname(): string {
    return this.state.hostname;
  }

  /** Transports subscribe to learn when a fault wants the connection dropped. */
  onDropRequested(listener: () => void): () => void {
    this.dropListeners.add(listener);
    return () => this.dropListeners.delete(listener);
  }

  /** Commands received so far, optionally only those whose command (after sudo) starts so. */
  commands(prefix: readonly string[] = []): SimCommandRecord[] {
    return this.log.filter((r) => prefix.every((p, i) => r.command[i] === p));
  }

  /** Runs one command line, already split into words. */
  async exec(argv: readonly string[], opts: SimExecOptions = {}): Promise<SimResult> {
    const cwd = opts.cwd ?? this.homeDir;
    const sudo = argv[0] === 'sudo';
    let command = [...argv];
    if (sudo) {
      // Only the `sudo -n CMD...` form; options beyond -n are refused like sudoers does.
      command = argv[1] === '-n' ? argv.slice(2) : argv.slice(1);
    }
    this.log.push({
      at: this.state.clock.now(),
      argv: [...argv],
      command,
      sudo,
      via: opts.via ?? 'direct',
      cwd,
    });
    const injected = await this.faults.apply(argv, () => {
      for (const l of this.dropListeners) l();
    });
    if (injected) return injected;
    if (sudo) {
      if (argv[1] !== '-n') {
        return {
          stdout: '',
          stderr:
            'sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper\nsudo: a password is required\n',
          exitCode: 1,
        };
      }
      if (command.length === 0 || !SUDO_ALLOWED.has(command[0] ?? '')) {
        return { stdout: '', stderr: 'sudo: a password is required\n', exitCode: 1 };
      }
      return this.run(command, cwd, opts, true);
    }
    if (
      this.state.requireSudo &&
      command[0] !== 'norm-argv' &&
      !ON_USER_PATH.has(command[0] ?? '') &&
      SUDO_ALLOWED.has(command[0] ?? '')
    ) {
      // An unprivileged login user has no /usr/sbin on PATH (xenlab: norm's PATH).
      return { stdout: '', stderr: `sh: 1: ${command[0]}: not found\n`, exitCode: 127 };
    }
    return this.run(command, cwd, opts, !this.state.requireSudo);
  }

  private async run(
    command: readonly string[],
    cwd: string,
    opts: SimExecOptions,
    asRoot: boolean,
  ): Promise<SimResult> {
    const [name = '', ...args] = command;
    switch (name) {
      case 'xl':
        return runXl({ state: this.state, files: opts.files ?? this.fs, cwd, sleep: this.sleep }, args);
      case 'vgs':
        this.state.settle();
        return runVgs(this.state, args);
      case 'lvs':
        this.state.settle();
        return runLvs(this.state, args);
      case 'lvcreate':
        this.state.settle();
        return runLvcreate(this.state, args);
      case 'lvremove':
        this.state.settle();
        return runLvremove(this.state, args);
      case 'install':
        return runInstall(opts.files ?? this.fs, args, asRoot);
      case 'norm-argv':
        // Test helper: proves that hostile arguments arrive intact through a transport.
        return { stdout: `${JSON.stringify(args)}\n`, stderr: '', exitCode: 0 };
      default:
        return { stdout: '', stderr: `sh: 1: ${name}: not found\n`, exitCode: 127 };
    }
  }
}
