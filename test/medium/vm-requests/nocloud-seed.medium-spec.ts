import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type JobContext } from '@norm/core';
import { RedisRevocationNotifier } from '@norm/platform';
import { parseXlCfg, sshOptions, SshXenHostFactory } from '@norm/xen';
import { type SimulatedFleet, type SimulatedFleetHost, startSimulatedFleet } from '@norm/xen/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REDIS_URL } from '../../harness/env';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { aCatalogue, aPrincipal, aRequest, aSimHostRow, type Catalogue } from './builders';
import { provisioningServices, tokenAccepted } from './provisioning-services';

/**
 * Disk-boot (pygrub) guests get their bootstrap data on a NoCloud seed volume (README "Guest
 * bootstrap data"): provisioned against the in-process simulated host, read back with Debian's
 * isoinfo, checked against the token Norm stored, and removed with the domain's config.
 */
const db = useTestDatabase();
const prefix = useRedisPrefix();
const redis = new Redis(REDIS_URL);
const revocations = new RedisRevocationNotifier(redis, prefix);
const scratch = mkdtempSync(join(tmpdir(), 'norm-seed-medium-'));

let fleet: SimulatedFleet;
let factory: SshXenHostFactory;
let sim: SimulatedFleetHost;
let pygrub: Catalogue;
let kernel: Catalogue;

const ctx = (attempt = 1): JobContext => ({ jobId: 'test', attempt, signal: new AbortController().signal });

function services() {
  return provisioningServices({ dataSource: db.dataSource, xen: factory, revocations, blockHostAfter: 100 });
}

/** The DISKSPEC strings of the config Norm placed for a domain. */
function configDisks(name: string): string[] {
  const disk = parseXlCfg(sim.sim.fs.readFile(`${sim.configDir}/${name}.cfg`).toString('utf8')).get('disk');
  return (Array.isArray(disk) ? disk : []).filter((d): d is string => typeof d === 'string');
}

let isoSeq = 0;
/** A file of the seed image, extracted by isoinfo through its Joliet names. */
function seedFile(image: Buffer, name: string): string {
  const path = join(scratch, `seed-${isoSeq++}.iso`);
  writeFileSync(path, image);
  return execFileSync('isoinfo', ['-J', '-x', `/${name}`, '-i', path], { encoding: 'utf8' });
}

/** What the agent would read from /etc/norm/agent.conf once cloud-init wrote it from the seed. */
function agentConf(image: Buffer): Record<string, string> {
  const doc = parse(seedFile(image, 'user-data')) as {
    write_files: Array<{ path: string; content: string }>;
  };
  const file = doc.write_files.find((f) => f.path === '/etc/norm/agent.conf');
  const out: Record<string, string> = {};
  for (const line of (file?.content ?? '').split('\n'))
    if (line !== '' && !line.startsWith('#'))
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
  return out;
}

const seedPathOf = (name: string) => `${sim.configDir}/${name}.seed.iso`;

beforeAll(async () => {
  fleet = await startSimulatedFleet({ count: 1, mode: 'inprocess' });
  sim = fleet.hosts[0]!;
  factory = new SshXenHostFactory(sshOptions({ privateKey: sim.privateKey }), { configDir: sim.configDir });
  await aSimHostRow(db.dataSource, sim);
  pygrub = await aCatalogue(db.dataSource, { method: 'pygrub' });
  kernel = await aCatalogue(db.dataSource, {
    method: 'kernel',
    kernel: '/var/lib/norm/images/tiny/vmlinuz',
    ramdisk: '/var/lib/norm/images/tiny/initrd.gz',
    kernelArgs: 'console=hvc0',
  });
}, 30_000);

afterAll(async () => {
  await factory?.close();
  await fleet?.stop();
  await redis.quit();
  rmSync(scratch, { recursive: true, force: true });
});

beforeEach(() => sim.sim.faults.reset());

describe('NoCloud seed for disk-boot guests', () => {
  it('places a root-only seed where the config attaches it, holding the token Norm accepts', async () => {
    const s = services();
    const me = aPrincipal();
    const { request } = await s.requests.create(me, aRequest(pygrub));
    await s.provision({ requestId: request.id }, ctx());
    const instance = (await s.instances.list(me, { limit: 1 })).items[0]!;
    expect(instance.state).toBe('running');

    // The config's second disk is the seed, read-only; xl (the simulator, with Norm's DISKSPEC
    // parser) found its target and attached it.
    const disks = configDisks(request.name);
    expect(disks).toHaveLength(2);
    expect(disks[1]).toBe(`format=raw, vdev=xvdb, access=ro, target=${seedPathOf(request.name)}`);
    const attached = sim.sim.state.findByName(request.name)!.disks;
    expect(attached.map((d) => [d.vdev, d.readwrite])).toEqual([
      ['xvda', true],
      ['xvdb', false],
    ]);

    const node = sim.sim.fs.get(attached[1]!.target)!;
    expect({ uid: node.uid, gid: node.gid, perm: node.mode & 0o777 }).toEqual({
      uid: 0,
      gid: 0,
      perm: 0o600,
    });
    expect(sim.sim.fs.exists(`${sim.configDir}/.${request.name}.seed.iso.staged`)).toBe(false);
    expect(sim.sim.fs.exists(`${sim.configDir}/.${request.name}.cfg.staged`)).toBe(false);

    const image = node.data;
    const conf = agentConf(image);
    expect(conf).toMatchObject({
      NORM_HEARTBEAT_URL: `http://10.0.2.100:8080/v1/instances/${instance.id}/heartbeat`,
      NORM_INTERVAL: '5',
    });
    expect(await tokenAccepted(db.dataSource, instance.id, conf.NORM_TOKEN!)).toBe(true);
    expect(parse(seedFile(image, 'meta-data'))).toEqual({
      'instance-id': instance.id,
      'local-hostname': request.name,
    });
    expect(parse(seedFile(image, 'network-config'))).toMatchObject({
      version: 2,
      ethernets: {
        eth0: {
          match: { macaddress: instance.mac },
          addresses: [`${instance.ip}/24`],
          routes: [{ to: '0.0.0.0/0', via: pygrub.network.gateway }],
        },
      },
    });

    // No extra= for a disk-boot guest, and the clear token is nowhere in Postgres.
    expect(sim.sim.fs.readFile(`${sim.configDir}/${request.name}.cfg`).toString('utf8')).not.toMatch(
      /^extra/m,
    );
    const leaks: Array<{ n: number }> = await db.dataSource.query(
      `SELECT count(*)::int AS n FROM "audit_events" WHERE "after"::text LIKE $1 OR "before"::text LIKE $1`,
      [`%${conf.NORM_TOKEN}%`],
    );
    expect(leaks[0]?.n).toBe(0);
  });

  it('a create retried after a transient failure leaves the seed with the one live token', async () => {
    const s = services();
    const me = aPrincipal();
    const { request } = await s.requests.create(me, aRequest(pygrub));
    sim.sim.faults.dropNextCommand((argv) => argv.includes('create'));
    await s.provision({ requestId: request.id }, ctx(1)).catch(() => undefined);
    await s.provision({ requestId: request.id }, ctx(2));
    const instance = (await s.instances.list(me, { limit: 1 })).items[0]!;
    expect(instance.state).toBe('running');
    const token = agentConf(sim.sim.fs.readFile(seedPathOf(request.name))).NORM_TOKEN!;
    expect(await tokenAccepted(db.dataSource, instance.id, token)).toBe(true);
    const live: Array<{ n: number }> = await db.dataSource.query(
      `SELECT count(*)::int AS n FROM "api_tokens" WHERE "instance_id" = $1 AND "revoked_at" IS NULL`,
      [instance.id],
    );
    expect(live[0]?.n).toBe(1);
  });

  it('decommission removes the seed with the config', async () => {
    const s = services();
    const me = aPrincipal();
    const { request } = await s.requests.create(me, aRequest(pygrub));
    await s.provision({ requestId: request.id }, ctx());
    const instance = (await s.instances.list(me, { limit: 1 })).items[0]!;
    expect(sim.sim.fs.exists(seedPathOf(request.name))).toBe(true);
    const dec = await s.instances.act(me, instance.id, 'decommission');
    await s.action({ operationId: dec.id }, ctx());
    expect((await s.instances.get(me, instance.id)).state).toBe('decommissioned');
    expect(sim.sim.fs.exists(seedPathOf(request.name))).toBe(false);
    expect(sim.sim.fs.exists(`${sim.configDir}/${request.name}.cfg`)).toBe(false);
  });

  it('a failed xl create compensates: seed and config gone', async () => {
    const s = services();
    const me = aPrincipal();
    const { request } = await s.requests.create(me, aRequest(pygrub));
    let placed = false;
    sim.sim.faults.failNext(
      1,
      { exitCode: 3, stderr: 'libxl: error: simulated create failure\n' },
      (argv) => {
        if (!argv.includes('create')) return false;
        // The seed is in place when xl create runs; compensation has to take it away.
        placed = sim.sim.fs.exists(seedPathOf(request.name));
        return true;
      },
    );
    await s.provision({ requestId: request.id }, ctx());
    expect((await s.requests.get(me, request.id)).state).toBe('failed');
    expect(placed).toBe(true);
    expect(sim.sim.fs.exists(seedPathOf(request.name))).toBe(false);
    expect(sim.sim.fs.exists(`${sim.configDir}/${request.name}.cfg`)).toBe(false);
  });

  it('gives a kernel-boot guest no seed: extra= only, one disk', async () => {
    const s = services();
    const me = aPrincipal();
    const { request } = await s.requests.create(me, aRequest(kernel));
    await s.provision({ requestId: request.id }, ctx());
    expect((await s.requests.get(me, request.id)).state).toBe('running');
    expect(configDisks(request.name)).toHaveLength(1);
    expect(sim.sim.fs.exists(seedPathOf(request.name))).toBe(false);
    expect(sim.sim.fs.readFile(`${sim.configDir}/${request.name}.cfg`).toString('utf8')).toMatch(
      /^extra = ".*norm\.token=/m,
    );
  });
});
