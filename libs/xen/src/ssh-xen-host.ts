import {
  type CreateVolumeRequest,
  type DomainConfig,
  type DomainDetail,
  type DomainSummary,
  type HostEndpoint,
  type IdempotentResult,
  type Logger,
  type LogicalVolume,
  type NoCloudSeed,
  type NormConfig,
  silentLogger,
  type VolumeGroup,
  type XenHost,
  type XenHostFactory,
  type XenInfo,
} from '@norm/core';
import { installRootOnlyArgv } from './commands/file.commands';
import { lvCreateArgv, lvRemoveArgv, lvSnapshotArgv, lvsArgv, vgsArgv } from './commands/lvm.commands';
import {
  xlCreateArgv,
  xlDestroyArgv,
  xlInfoArgv,
  xlListArgv,
  xlListLongArgv,
  xlPauseArgv,
  xlRebootArgv,
  xlShutdownArgv,
  xlUnpauseArgv,
} from './commands/xl.commands';
import {
  CommandTimeout,
  DomainExists,
  DomainNotFound,
  VolumeExists,
  VolumeNotFound,
} from './errors/xen.errors';
import { parseLvs, parseVgs } from './parsers/lvm.parser';
import { parseXlInfo } from './parsers/xl-info.parser';
import { parseXlListLong } from './parsers/xl-list-long.parser';
import { parseXlList } from './parsers/xl-list.parser';
import { assertDomainName } from './validation/allow-lists';
import { noCloudSeedIso } from './seed/nocloud-seed';
import { renderXlCfg } from './xl-cfg/xl-cfg.renderer';
import { readHostKeyFingerprint } from './ssh/read-host-key';
import { type RemoteShell } from './ssh/ssh-host-connection';
import { sshOptionsFromConfig, type SshTransportOptions } from './ssh/ssh-options';
import { sshKeyConfigured } from './ssh/ssh-private-key';
import { SshPool } from './ssh/ssh-pool';

/** Where a disk-boot guest sees its NoCloud seed: the disk after its root disk (xvda). */
export const SEED_VDEV = 'xvdb';

export interface SshXenHostOptions {
  /** Norm-owned directory for uploaded xl.cfg files (NORM_XEN_CONFIG_DIR). */
  configDir: string;
  logger?: Logger;
}

/**
 * The Xen operations of one host, over any RemoteShell (the pooled SSH connection in
 * production). Every mutating operation is idempotent by name, so a retried or recovered
 * job converges instead of failing on its own earlier success.
 */
export class SshXenHost implements XenHost {
  private readonly logger: Logger;

  constructor(
    private readonly shell: RemoteShell,
    private readonly options: SshXenHostOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
  }

  get hostName(): string {
    return this.shell.hostName;
  }

  async info(): Promise<XenInfo> {
    return parseXlInfo((await this.shell.exec(xlInfoArgv())).stdout);
  }

  async listDomains(): Promise<DomainSummary[]> {
    return parseXlList((await this.shell.exec(xlListArgv())).stdout);
  }

  async listDomainDetails(): Promise<DomainDetail[]> {
    return parseXlListLong((await this.shell.exec(xlListLongArgv())).stdout);
  }

  async createDomain(cfg: DomainConfig, seed?: NoCloudSeed): Promise<IdempotentResult & { domid?: number }> {
    // The seed goes after the domain's own disks: pygrub boots from the first disk, and the
    // guest finds the seed by its label, not by its device name.
    const disks = seed
      ? [
          ...cfg.disks,
          { target: this.seedPath(cfg.name), vdev: SEED_VDEV, access: 'ro' as const, format: 'raw' as const },
        ]
      : cfg.disks;
    // Rendering validates every value, so nothing is uploaded for a config Xen would reject.
    const text = renderXlCfg({ ...cfg, disks });
    const image = seed ? noCloudSeedIso(seed) : undefined;
    const existing = await this.findDomain(cfg.name);
    if (existing) return { changed: false, domid: existing.domid };
    const path = this.configPath(cfg.name);
    // The seed first: the config never names a seed volume that is not in place.
    if (image) await this.placeRootOnly(image, this.seedStagedPath(cfg.name), this.seedPath(cfg.name));
    await this.placeRootOnly(text, this.stagedPath(cfg.name), path);
    try {
      await this.shell.exec(xlCreateArgv(path));
    } catch (err) {
      // Another worker won the race between our check and our create: same outcome.
      if (err instanceof DomainExists)
        return { changed: false, domid: (await this.findDomain(cfg.name))?.domid };
      throw err;
    }
    const created = await this.findDomain(cfg.name);
    this.logger.info('domain created', { host: this.hostName, name: cfg.name, domid: created?.domid });
    return { changed: true, domid: created?.domid };
  }

  /**
   * Gone afterwards, gracefully if the guest cooperates within `timeoutMs`, else destroyed.
   * `xl shutdown -ww` returns once that domid is destroyed, but the name can come back under
   * a new domid (a reboot already in flight, on_poweroff=restart), so it is asked again until
   * the name is gone or the deadline passes.
   */
  async shutdownDomain(name: string, timeoutMs: number): Promise<IdempotentResult & { forced: boolean }> {
    const deadline = performance.now() + timeoutMs;
    let changed = false;
    for (;;) {
      const remaining = Math.floor(deadline - performance.now());
      if (remaining <= 0) break;
      try {
        await this.shell.exec(xlShutdownArgv(name), { timeoutMs: remaining });
        changed = true;
      } catch (err) {
        if (err instanceof DomainNotFound) return { changed, forced: false };
        // Only a guest that did not stop in time is forced; a host that could not even be
        // reached is not a reason to destroy anything (the destroy would fail the same way).
        if (!(err instanceof CommandTimeout) || err.details.phase !== 'exec') throw err;
        break;
      }
      if (!(await this.findDomain(name))) return { changed: true, forced: false };
    }
    this.logger.warn('graceful shutdown timed out; destroying', { host: this.hostName, name, timeoutMs });
    try {
      await this.shell.exec(xlDestroyArgv(name));
      return { changed: true, forced: true };
    } catch (err) {
      // It finished shutting down just as the deadline passed.
      if (err instanceof DomainNotFound) return { changed: true, forced: false };
      throw err;
    }
  }

  async destroyDomain(name: string): Promise<IdempotentResult> {
    try {
      await this.shell.exec(xlDestroyArgv(name));
      return { changed: true };
    } catch (err) {
      if (err instanceof DomainNotFound) return { changed: false };
      throw err;
    }
  }

  async rebootDomain(name: string): Promise<void> {
    await this.shell.exec(xlRebootArgv(name));
  }

  async pauseDomain(name: string): Promise<void> {
    await this.shell.exec(xlPauseArgv(name));
  }

  async unpauseDomain(name: string): Promise<void> {
    await this.shell.exec(xlUnpauseArgv(name));
  }

  async volumeGroups(): Promise<VolumeGroup[]> {
    return parseVgs((await this.shell.exec(vgsArgv())).stdout);
  }

  async logicalVolumes(vg?: string): Promise<LogicalVolume[]> {
    return parseLvs((await this.shell.exec(lvsArgv(vg))).stdout);
  }

  async createVolume(req: CreateVolumeRequest): Promise<IdempotentResult> {
    try {
      await this.shell.exec(
        req.snapshotOf
          ? lvSnapshotArgv(req.vg, req.snapshotOf, req.name, req.sizeMb)
          : lvCreateArgv(req.vg, req.name, req.sizeMb),
      );
      return { changed: true };
    } catch (err) {
      if (err instanceof VolumeExists) return { changed: false };
      throw err;
    }
  }

  async removeVolume(vg: string, name: string): Promise<IdempotentResult> {
    try {
      await this.shell.exec(lvRemoveArgv(vg, name));
      return { changed: true };
    } catch (err) {
      if (err instanceof VolumeNotFound) return { changed: false };
      throw err;
    }
  }

  async removeDomainConfig(name: string): Promise<IdempotentResult> {
    // Both, whichever exists: a kernel-boot domain has no seed, and a create that failed
    // between the two uploads left only the seed.
    const config = await this.shell.remove(this.configPath(name));
    const seed = await this.shell.remove(this.seedPath(name));
    return { changed: config || seed };
  }

  /**
   * The config and the seed carry the instance's heartbeat token: each is uploaded (as the
   * login user, who owns the directory) beside its final place, then installed root:root 0600
   * over it, so at rest only root can read it. The staged copy goes whatever happens.
   */
  private async placeRootOnly(content: string | Buffer, staged: string, path: string): Promise<void> {
    await this.shell.upload(staged, content, { mode: 0o600 });
    try {
      await this.shell.exec(installRootOnlyArgv(staged, path));
    } finally {
      await this.shell.remove(staged).catch(() => false);
    }
  }

  private async findDomain(name: string): Promise<DomainSummary | undefined> {
    return (await this.listDomains()).find((d) => d.name === name);
  }

  private configPath(name: string): string {
    assertDomainName(name);
    return `${this.options.configDir}/${name}.cfg`;
  }

  /** A dot name, so nothing globbing `*.cfg` in the directory ever takes a half-placed config. */
  private stagedPath(name: string): string {
    assertDomainName(name);
    return `${this.options.configDir}/.${name}.cfg.staged`;
  }

  /** The NoCloud seed volume of a disk-boot domain, next to its config. */
  private seedPath(name: string): string {
    assertDomainName(name);
    return `${this.options.configDir}/${name}.seed.iso`;
  }

  private seedStagedPath(name: string): string {
    assertDomainName(name);
    return `${this.options.configDir}/.${name}.seed.iso.staged`;
  }
}

/** XenHost handles over one shared SSH pool; close() at shutdown ends every connection. */
export class SshXenHostFactory implements XenHostFactory {
  readonly pool: SshPool;

  constructor(
    private readonly transport: SshTransportOptions,
    private readonly options: SshXenHostOptions,
  ) {
    this.pool = new SshPool(transport);
  }

  static fromConfig(config: NormConfig, logger?: Logger): SshXenHostFactory {
    return new SshXenHostFactory(sshOptionsFromConfig(config, logger), {
      configDir: config.xenConfigDir,
      logger,
    });
  }

  /**
   * Like fromConfig, but undefined when no SSH key is configured at all (neither
   * NORM_SSH_KEY_PATH nor NORM_SSH_PRIVATE_KEY, and no `<stateDir>/ssh/id_ed25519`): the
   * process then runs without Xen access (the API answers host registration with 503, the
   * worker runs no host sync) instead of refusing to boot. A key that is configured but
   * unreadable or unusable still fails the boot, naming the setting.
   */
  static fromConfigIfKeyed(config: NormConfig, logger?: Logger): SshXenHostFactory | undefined {
    const source = {
      keyPath: config.sshKeyPath,
      privateKey: config.sshPrivateKey,
      stateDir: config.stateDir,
    };
    if (!sshKeyConfigured(source)) return undefined;
    return SshXenHostFactory.fromConfig(config, logger);
  }

  forHost(endpoint: HostEndpoint): XenHost {
    return new SshXenHost(this.pool.forHost(endpoint), this.options);
  }

  readFingerprint(
    address: string,
    port: number,
    timeoutMs = this.transport.connectTimeoutMs,
  ): Promise<string> {
    return readHostKeyFingerprint(address, port, timeoutMs);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
