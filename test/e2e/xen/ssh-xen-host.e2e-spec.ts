import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DomainConfig,
  type DomainError,
  type HostEndpoint,
  isDomainError,
  type XenHost,
} from '@norm/core';
import { noCloudSeedIso, sshOptions, SshXenHostFactory } from '@norm/xen';
import {
  type SimulatedFleet,
  type SimulatedFleetHost,
  type SimulatedFleetMode,
  startSimulatedFleet,
} from '@norm/xen/testing';

/**
 * Every XenHost operation through the real transport, against the in-process simulator and
 * against a real OpenSSH sshd running the same fake xl/LVM. The hosts require `sudo -n`
 * (like the `norm` user on xenlab), so the sudo prefix is exercised on every command.
 */
const MODES: SimulatedFleetMode[] = ['inprocess', 'openssh'];

function domain(name: string, memoryMb = 256): DomainConfig {
  return {
    name,
    vcpus: 1,
    memoryMb,
    boot: {
      kind: 'kernel',
      kernel: '/var/lib/norm/boot/vmlinuz',
      ramdisk: '/var/lib/norm/boot/initrd.img',
      extra: 'console=hvc0 norm.token=t0k',
    },
    disks: [{ target: `/dev/vg0/${name}`, vdev: 'xvda', access: 'rw' }],
    vifs: [{ mac: '00:16:3e:12:34:56', bridge: 'xenbr0' }],
  };
}

describe.each(MODES)('SshXenHost over %s', (mode) => {
  let fleet: SimulatedFleet;
  let h: SimulatedFleetHost;
  let factory: SshXenHostFactory;
  let host: XenHost;
  let endpoint: HostEndpoint;

  beforeAll(async () => {
    fleet = await startSimulatedFleet({ count: 1, mode, hostOptions: { requireSudo: true } });
    h = fleet.hosts[0]!;
    factory = new SshXenHostFactory(sshOptions({ privateKey: h.privateKey }), { configDir: h.configDir });
    endpoint = {
      name: h.name,
      address: h.address,
      port: h.port,
      user: h.user,
      hostKeyFingerprint: h.fingerprint,
      sudo: true,
    };
    host = factory.forHost(endpoint);
  });
  afterAll(async () => {
    await factory.close();
    await fleet.stop();
  });

  /** Mode and owner of a file in the upload directory, on whichever filesystem the host has. */
  function configStat(file: string): { perm: number; uid: number } | undefined {
    const path = `${h.configDir}/${file}`;
    if (mode === 'openssh') {
      try {
        const st = statSync(path);
        return { perm: st.mode & 0o777, uid: st.uid };
      } catch {
        return undefined;
      }
    }
    const node = h.sim.fs.get(path);
    return node ? { perm: node.mode & 0o777, uid: node.uid } : undefined;
  }

  it('reads capacity, domains, domain details, volume groups and volumes', async () => {
    const info = await host.info();
    expect(info.host).toBe(h.name);
    expect(info.totalMemoryMb).toBeGreaterThan(info.freeMemoryMb);
    expect((await host.listDomains()).map((d) => d.name)).toContain('Domain-0');
    expect((await host.listDomainDetails()).map((d) => d.name)).toEqual(expect.any(Array));
    expect((await host.volumeGroups()).map((vg) => vg.name)).toContain('vg0');
    expect((await host.logicalVolumes('vg0')).map((lv) => lv.name)).toContain('golden-tiny');
    expect((await host.logicalVolumes()).length).toBeGreaterThan(0);
    // Every command went through sudo -n.
    expect(h.sim.log.every((r) => r.sudo)).toBe(true);
  });

  it('creates a volume, a domain from an uploaded config placed root-only, idempotently', async () => {
    expect(
      await host.createVolume({ vg: 'vg0', name: 'web1', sizeMb: 128, snapshotOf: 'golden-tiny' }),
    ).toEqual({
      changed: true,
    });
    expect(
      await host.createVolume({ vg: 'vg0', name: 'web1', sizeMb: 128, snapshotOf: 'golden-tiny' }),
    ).toEqual({
      changed: false,
    });
    const created = await host.createDomain(domain('web1'));
    expect(created.changed).toBe(true);
    expect(created.domid).toEqual(expect.any(Number));
    // Placed by a sudo'd install: root's, 0600 (it carries the instance token); no staged copy left.
    expect(configStat('web1.cfg')).toEqual({ perm: 0o600, uid: 0 });
    expect(configStat('.web1.cfg.staged')).toBeUndefined();
    expect(h.sim.commands(['install'])).toHaveLength(1);
    const again = await host.createDomain(domain('web1'));
    expect(again).toEqual({ changed: false, domid: created.domid });
    expect(h.sim.commands(['xl', 'create'])).toHaveLength(1);
    const details = await host.listDomainDetails();
    expect(details.find((d) => d.name === 'web1')).toMatchObject({ domid: created.domid });
  });

  it('creates a plain (non-snapshot) volume of the requested size, idempotently, and removes it', async () => {
    expect(await host.createVolume({ vg: 'vg0', name: 'scratch1', sizeMb: 256 })).toEqual({ changed: true });
    expect(await host.createVolume({ vg: 'vg0', name: 'scratch1', sizeMb: 256 })).toEqual({ changed: false });
    const lv = (await host.logicalVolumes('vg0')).find((v) => v.name === 'scratch1');
    expect(lv).toMatchObject({ vg: 'vg0', sizeMb: 256 });
    expect(lv?.origin ?? null).toBeNull();
    expect(await host.removeVolume('vg0', 'scratch1')).toEqual({ changed: true });
    expect(await host.removeVolume('vg0', 'scratch1')).toEqual({ changed: false });
  });

  it('pauses, unpauses and reboots a domain', async () => {
    await host.pauseDomain('web1');
    expect((await host.listDomains()).find((d) => d.name === 'web1')?.flags.paused).toBe(true);
    await host.unpauseDomain('web1');
    expect((await host.listDomains()).find((d) => d.name === 'web1')?.flags.paused).toBe(false);
    await host.rebootDomain('web1');
    expect(h.sim.commands(['xl', 'reboot'])).toHaveLength(1);
  });

  it('shuts a domain down gracefully, and reports a gone domain as unchanged', async () => {
    expect(await host.shutdownDomain('web1', 10_000)).toEqual({ changed: true, forced: false });
    expect((await host.listDomains()).some((d) => d.name === 'web1')).toBe(false);
    expect(await host.shutdownDomain('web1', 10_000)).toEqual({ changed: false, forced: false });
  });

  /** A domain's disk must exist, as on a real host (libxl stats it before building anything). */
  async function createWithVolume(name: string, memoryMb?: number): Promise<void> {
    await host.createVolume({ vg: 'vg0', name, sizeMb: 64, snapshotOf: 'golden-tiny' });
    await host.createDomain(domain(name, memoryMb));
  }

  it('forces a domain that ignores shutdown, within the timeout', async () => {
    await createWithVolume('stuck1');
    h.sim.faults.ignoreShutdown('stuck1');
    const t0 = performance.now();
    expect(await host.shutdownDomain('stuck1', 500)).toEqual({ changed: true, forced: true });
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect((await host.listDomains()).some((d) => d.name === 'stuck1')).toBe(false);
    expect(await host.removeVolume('vg0', 'stuck1')).toEqual({ changed: true });
  });

  it('waits out a reboot in flight: the name is gone afterwards, not just that domid', async () => {
    await createWithVolume('web3');
    await host.rebootDomain('web3');
    expect(await host.shutdownDomain('web3', 10_000)).toEqual({ changed: true, forced: false });
    expect((await host.listDomains()).some((d) => d.name === 'web3')).toBe(false);
    expect(await host.removeVolume('vg0', 'web3')).toEqual({ changed: true });
  });

  it('destroys a domain, and destroying a gone one is success without change', async () => {
    await createWithVolume('web2');
    expect(await host.destroyDomain('web2')).toEqual({ changed: true });
    expect(await host.destroyDomain('web2')).toEqual({ changed: false });
    expect(await host.removeVolume('vg0', 'web2')).toEqual({ changed: true });
  });

  it('removes configs and volumes idempotently', async () => {
    expect(await host.removeDomainConfig('web1')).toEqual({ changed: true });
    expect(configStat('web1.cfg')).toBeUndefined();
    expect(await host.removeDomainConfig('web1')).toEqual({ changed: false });
    expect(await host.removeVolume('vg0', 'web1')).toEqual({ changed: true });
    expect(await host.removeVolume('vg0', 'web1')).toEqual({ changed: false });
  });

  it('places a NoCloud seed root-only beside the config, attaches it read-only, and removes both', async () => {
    await host.createVolume({ vg: 'vg0', name: 'seed1', sizeMb: 64, snapshotOf: 'golden-tiny' });
    const seed = {
      metaData: 'instance-id: seed1\n',
      userData: '#cloud-config\n',
      networkConfig: 'version: 2\n',
    };
    const cfg: DomainConfig = { ...domain('seed1', 64), boot: { kind: 'pygrub' } };
    expect((await host.createDomain(cfg, seed)).changed).toBe(true);
    expect(configStat('seed1.seed.iso')).toEqual({ perm: 0o600, uid: 0 });
    expect(configStat('.seed1.seed.iso.staged')).toBeUndefined();
    const path = `${h.configDir}/seed1.seed.iso`;
    // Binary through SFTP and install unchanged.
    const placed = mode === 'openssh' ? readFileSync(path) : h.sim.fs.readFile(path);
    expect(placed.equals(noCloudSeedIso(seed))).toBe(true);
    const disks = (await host.listDomainDetails()).find((d) => d.name === 'seed1')?.disks;
    expect(disks?.map((d) => [d.vdev, d.target, d.readwrite ?? false])).toEqual([
      ['xvda', '/dev/vg0/seed1', true],
      ['xvdb', path, false],
    ]);
    await host.destroyDomain('seed1');
    expect(await host.removeDomainConfig('seed1')).toEqual({ changed: true });
    expect(configStat('seed1.seed.iso')).toBeUndefined();
    expect(configStat('seed1.cfg')).toBeUndefined();
    await host.removeVolume('vg0', 'seed1');
  });

  it('reports low memory as InsufficientMemory', async () => {
    await host.createVolume({ vg: 'vg0', name: 'big1', sizeMb: 64, snapshotOf: 'golden-tiny' });
    const freeBefore = (await host.info()).freeMemoryMb;
    h.sim.faults.setFreeMemoryMb(64);
    try {
      const err = await failure(host.createDomain(domain('big1', 1024)));
      expect(err.code).toBe('InsufficientMemory');
      expect(err.details).toMatchObject({ host: h.name, exitCode: 3 });
      expect((await host.listDomains()).some((d) => d.name === 'big1')).toBe(false);
    } finally {
      h.sim.faults.setFreeMemoryMb(freeBefore);
      await host.removeVolume('vg0', 'big1');
    }
  });

  it("reports a missing disk as XlCommandError, keeping xl's stderr for the operator", async () => {
    const err = await failure(host.createDomain(domain('nodisk1')));
    expect(err.code).toBe('XlCommandError');
    expect(err.details).toMatchObject({ host: h.name, exitCode: 3 });
    expect(String(err.details.stderr)).toContain('failed to stat: /dev/vg0/nodisk1');
    await host.removeDomainConfig('nodisk1');
  });

  it('reads the host key fingerprint for registration', async () => {
    expect(await factory.readFingerprint(h.address, h.port, 2_000)).toBe(h.fingerprint);
  });
});

async function failure(promise: Promise<unknown>): Promise<DomainError> {
  try {
    await promise;
  } catch (err) {
    if (isDomainError(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}
