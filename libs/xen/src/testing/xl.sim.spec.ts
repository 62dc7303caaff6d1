import { describe, expect, it } from 'vitest';
import { SimulatedXenHost } from './xen-host.sim';
import { ManualClock } from './xen-sim.state';

const WEB1_CFG = `name    = "web1"
type    = "pv"
kernel  = "/var/lib/norm/images/tiny/vmlinuz"
ramdisk = "/var/lib/norm/images/tiny/initrd.gz"
extra   = "console=hvc0 norm.token=t0k"
memory  = 128
vcpus   = 1
vif     = [ "bridge=xenbr0,mac=00:16:3E:12:34:56" ]
disk    = [ 'format=raw, vdev=xvda, access=rw, target=/dev/vg0/web1' ]
on_poweroff = "destroy"
on_reboot   = "restart"
on_crash    = "destroy"
`;

function setup(opts: { totalMemoryMb?: number } = {}): { host: SimulatedXenHost; clock: ManualClock } {
  const clock = new ManualClock();
  const host = new SimulatedXenHost({ hostname: 'xenlab', clock, sleep: () => Promise.resolve(), ...opts });
  return { host, clock };
}

async function createWeb1(host: SimulatedXenHost, name = 'web1'): Promise<void> {
  await host.exec(['lvcreate', '-y', '-s', '-L', '128m', '-n', name, 'vg0/golden-tiny']);
  host.fs.writeFile(`/var/lib/norm/domains/${name}.cfg`, WEB1_CFG.replace(/web1/g, name));
  const r = await host.exec(['xl', 'create', `/var/lib/norm/domains/${name}.cfg`]);
  expect(r).toEqual({
    stdout: '',
    stderr: `Parsing config from /var/lib/norm/domains/${name}.cfg\n`,
    exitCode: 0,
  });
}

describe('xl list', () => {
  it('prints the real header with TABs and a 79-column Domain-0 row', async () => {
    const { host } = setup();
    const r = await host.exec(['xl', 'list']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    const [header, row, end] = r.stdout.split('\n');
    expect(header).toBe('Name                                        ID   Mem VCPUs\tState\tTime(s)');
    expect(row).toMatch(/^Domain-0 {32} {5}0 {2}1024 {5}2 {5}r----- {2} {2,}\d+\.\d$/);
    expect(row).toHaveLength(79);
    expect(end).toBe('');
  });

  it('matches the printf layout column by column', async () => {
    const { host, clock } = setup();
    await createWeb1(host);
    clock.advance(100_000);
    const rows = (await host.exec(['xl', 'list'])).stdout.split('\n');
    expect(rows[2]).toBe(`${'web1'.padEnd(40)}     1   128     1     -b----       1.0`);
  });

  it('shows CPU time growing with the clock and stopping while paused', async () => {
    const { host, clock } = setup();
    await createWeb1(host);
    clock.advance(50_000);
    expect((await host.exec(['xl', 'pause', 'web1'])).exitCode).toBe(0);
    clock.advance(1_000_000);
    const row = (await host.exec(['xl', 'list', 'web1'])).stdout.split('\n')[1];
    expect(row).toBe(`${'web1'.padEnd(40)}     1   128     1     --p---       0.5`);
    await host.exec(['xl', 'unpause', 'web1']);
    clock.advance(50_000);
    expect((await host.exec(['xl', 'list', 'web1'])).stdout.split('\n')[1]).toContain('-b----       1.0');
  });

  it('rejects unknown names, missing numeric ids and bad options like xl 4.17', async () => {
    const { host } = setup();
    expect(await host.exec(['xl', 'list', 'nope'])).toEqual({
      stdout: '',
      stderr: 'nope is an invalid domain identifier (rc=-6)\n',
      exitCode: 1,
    });
    expect(await host.exec(['xl', 'list', '99'])).toEqual({
      stdout: '',
      stderr: "Error: Domain '99' does not exist.\n",
      exitCode: 1,
    });
    expect(await host.exec(['xl', 'list', '-x'])).toEqual({
      stdout: '',
      stderr: "option `x' not supported.\n",
      exitCode: 2,
    });
    expect(await host.exec(['xl', 'list', '--bogus'])).toEqual({
      stdout: '',
      stderr: "option `\0' not supported.\n",
      exitCode: 2,
    });
  });

  it('accepts unambiguous sub-command prefixes and refuses ambiguous or unknown ones', async () => {
    const { host } = setup();
    expect((await host.exec(['xl', 'li'])).stdout).toContain('Domain-0');
    expect(await host.exec(['xl', 'd', '1'])).toEqual({
      stdout: '',
      stderr: 'command not implemented\n',
      exitCode: 1,
    });
    expect(await host.exec(['xl', 'frobnicate'])).toEqual({
      stdout: '',
      stderr: 'command not implemented\n',
      exitCode: 1,
    });
  });

  it('prints -l as yajl JSON including Domain-0 and the uploaded config', async () => {
    const { host } = setup();
    await createWeb1(host);
    const r = await host.exec(['xl', 'list', '-l']);
    expect(
      r.stdout.startsWith(
        '[\n    {\n        "domid": 0,\n        "config": {\n            "c_info": {\n                "type": "pv",\n                "name": "Domain-0"\n            },',
      ),
    ).toBe(true);
    expect(r.stdout.endsWith('\n]\n\n')).toBe(true);
    expect(r.stdout).toContain('"sched_params": {\n\n                },');
    const parsed = JSON.parse(r.stdout) as Array<{ domid: number; config: Record<string, unknown> }>;
    expect(parsed.map((d) => d.domid)).toEqual([0, 1]);
    const web1 = parsed[1]?.config as {
      c_info: { name: string };
      b_info: { target_memkb: number; cmdline: string };
      disks: Array<{ pdev_path: string }>;
      nics: Array<{ mac: string }>;
      on_reboot: string;
    };
    expect(web1.c_info.name).toBe('web1');
    expect(web1.b_info.target_memkb).toBe(131072);
    expect(web1.b_info.cmdline).toBe('console=hvc0 norm.token=t0k');
    expect(web1.disks[0]?.pdev_path).toBe('/dev/vg0/web1');
    expect(web1.nics[0]?.mac).toBe('00:16:3e:12:34:56');
    expect(web1.on_reboot).toBe('restart');
  });
});

describe('xl info', () => {
  it('prints every 4.17 key in order, padded to 23 columns, with memory consistent with domains', async () => {
    const { host } = setup({ totalMemoryMb: 16383 });
    const before = (await host.exec(['xl', 'info'])).stdout;
    const keys = before
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(0, 23).trimEnd());
    expect(keys).toEqual([
      'host',
      'release',
      'version',
      'machine',
      'nr_cpus',
      'max_cpu_id',
      'nr_nodes',
      'cores_per_socket',
      'threads_per_core',
      'cpu_mhz',
      'hw_caps',
      'virt_caps',
      'total_memory',
      'free_memory',
      'sharing_freed_memory',
      'sharing_used_memory',
      'outstanding_claims',
      'free_cpus',
      'xen_major',
      'xen_minor',
      'xen_extra',
      'xen_version',
      'xen_caps',
      'xen_scheduler',
      'xen_pagesize',
      'platform_params',
      'xen_changeset',
      'xen_commandline',
      'cc_compiler',
      'cc_compile_by',
      'cc_compile_domain',
      'cc_compile_date',
      'build_id',
      'xend_config_format',
    ]);
    expect(before).toContain('\nxen_changeset          : \n');
    expect(before).toContain('\nxen_version            : 4.17.5\n');
    expect(before).toContain('\nvirt_caps              : pv hvm');
    expect(before).toMatch(/\nxen_caps {15}: xen-3\.0-x86_64 .* \n/);
    expect(before).toContain('host                   : xenlab\n');
    expect(before).toContain('total_memory           : 16383\n');
    expect(before).toContain(`free_memory            : ${16383 - 187 - 1024}\n`);
    await createWeb1(host);
    expect((await host.exec(['xl', 'info', 'free_memory'])).stdout).toBe(`${16383 - 187 - 1024 - 128}\n`);
    await host.exec(['xl', 'destroy', 'web1']);
    expect((await host.exec(['xl', 'info', 'free_mem'])).stdout).toBe(`${16383 - 187 - 1024}\n`);
    expect((await host.exec(['xl', 'info', 'free'])).stdout).toBe(`${16383 - 187 - 1024}\n0\n`);
  });
});

describe('xl create', () => {
  it('fails on a missing config file with exit 3 and nothing else', async () => {
    const { host } = setup();
    expect(await host.exec(['xl', 'create', '/var/lib/norm/domains/nope.cfg'])).toEqual({
      stdout: '',
      stderr: 'Failed to read config file: /var/lib/norm/domains/nope.cfg: No such file or directory\n',
      exitCode: 3,
    });
  });

  it('refuses a duplicate name with the 4.9+ libxl lines, consuming a domid', async () => {
    const { host } = setup();
    await createWeb1(host);
    const r = await host.exec(['xl', 'create', '/var/lib/norm/domains/web1.cfg']);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toBe(
      'Parsing config from /var/lib/norm/domains/web1.cfg\n' +
        'libxl: error: libxl_domain.c:81:libxl__domain_rename: Domain 2:Domain with name "web1" already exists.\n' +
        'libxl: error: libxl_create.c:1262:initiate_domain_create: Domain 2:cannot make domain: -6\n' +
        'libxl: error: libxl_domain.c:1183:libxl__destroy_domid: Domain 2:Non-existant domain\n' +
        'libxl: error: libxl_domain.c:1137:domain_destroy_callback: Domain 2:Unable to destroy guest\n' +
        'libxl: error: libxl_domain.c:1064:domain_destroy_cb: Domain 2:Destruction of domain failed\n',
    );
    await createWeb1(host, 'web2');
    expect((await host.exec(['xl', 'domid', 'web2'])).stdout).toBe('3\n');
  });

  it('fails out of memory with the xc panic and the destroy trio', async () => {
    const { host } = setup();
    host.faults.setFreeMemoryMb(100);
    expect((await host.exec(['xl', 'info', 'free_memory'])).stdout).toBe('100\n');
    await host.exec(['lvcreate', '-y', '-s', '-L', '128m', '-n', 'web1', 'vg0/golden-tiny']);
    host.fs.writeFile('/var/lib/norm/domains/web1.cfg', WEB1_CFG);
    const r = await host.exec(['xl', 'create', '/var/lib/norm/domains/web1.cfg']);
    expect(r.exitCode).toBe(3);
    const lines = r.stderr.split('\n');
    expect(lines[1]).toMatch(
      /^xc: error: panic: xg_dom_boot\.c:\d+: xc_dom_boot_mem_init: can't allocate low memory for domain: Out of memory$/,
    );
    expect(lines[3]).toMatch(
      /^libxl: error: libxl_create\.c:\d+:domcreate_rebuild_done: Domain 1:cannot \(re-\)build domain: -3$/,
    );
    expect(lines.slice(4, 7).map((l) => l.replace(/:\d+:/, ':N:'))).toEqual([
      'libxl: error: libxl_domain.c:N:libxl__destroy_domid: Domain 1:Non-existant domain',
      'libxl: error: libxl_domain.c:N:domain_destroy_callback: Domain 1:Unable to destroy guest',
      'libxl: error: libxl_domain.c:N:domain_destroy_cb: Domain 1:Destruction of domain failed',
    ]);
    expect((await host.exec(['xl', 'list'])).stdout.split('\n')).toHaveLength(3);
  });

  it('fails when a disk target LV does not exist, as seen on xenlab', async () => {
    const { host } = setup();
    host.fs.writeFile('/var/lib/norm/domains/web1.cfg', WEB1_CFG);
    const r = await host.exec(['xl', 'create', '/var/lib/norm/domains/web1.cfg']);
    expect(r.exitCode).toBe(3);
    expect(r.stderr.split('\n').slice(1, 3)).toEqual([
      'libxl: error: libxl_device.c:455:libxl__device_disk_set_backend: Disk vdev=xvda failed to stat: /dev/vg0/web1: No such file or directory',
      'libxl: error: libxl_create.c:1318:initiate_domain_create: Domain 1:Unable to set disk defaults for disk 0',
    ]);
  });

  it("attaches a read-only seed file after the root disk, as Norm's disk-boot configs ask", async () => {
    const { host } = setup();
    await host.exec(['lvcreate', '-y', '-s', '-L', '128m', '-n', 'web1', 'vg0/golden-tiny']);
    const seed = '/var/lib/norm/domains/web1.seed.iso';
    host.fs.writeFile(
      '/var/lib/norm/domains/web1.cfg',
      WEB1_CFG.replace(
        "target=/dev/vg0/web1' ]",
        `target=/dev/vg0/web1', 'format=raw, vdev=xvdb, access=ro, target=${seed}' ]`,
      ),
    );
    // Not placed yet: libxl cannot stat the second disk.
    const missing = await host.exec(['xl', 'create', '/var/lib/norm/domains/web1.cfg']);
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr.split('\n').slice(1, 3)).toEqual([
      `libxl: error: libxl_device.c:455:libxl__device_disk_set_backend: Disk vdev=xvdb failed to stat: ${seed}: No such file or directory`,
      'libxl: error: libxl_create.c:1318:initiate_domain_create: Domain 1:Unable to set disk defaults for disk 1',
    ]);
    // Placed as Norm places it: binary, root:root 0600 (xl runs as root).
    host.fs.writeFile(
      '/var/lib/norm/domains/.web1.seed.iso.staged',
      Buffer.from([0x00, 0xff, 0x43, 0x44, 0x30, 0x30, 0x31]),
    );
    expect(host.fs.installFile('/var/lib/norm/domains/.web1.seed.iso.staged', seed, 0o600, 0)).toEqual({
      ok: true,
    });
    expect((await host.exec(['xl', 'create', '/var/lib/norm/domains/web1.cfg'])).exitCode).toBe(0);
    const [domain] = JSON.parse((await host.exec(['xl', 'list', '-l', 'web1'])).stdout) as Array<{
      config: { disks: Array<Record<string, unknown>> };
    }>;
    // A regular file is not a block device, so Linux libxl gives it to QEMU's qdisk, not blkback.
    expect(domain!.config.disks).toEqual([
      { pdev_path: '/dev/vg0/web1', vdev: 'xvda', backend: 'phy', format: 'raw', readwrite: 1 },
      { pdev_path: seed, vdev: 'xvdb', backend: 'qdisk', format: 'raw' },
    ]);
  });

  it('requires a name', async () => {
    const { host } = setup();
    host.fs.writeFile('/var/lib/norm/domains/x.cfg', 'memory = 64\n');
    expect(await host.exec(['xl', 'create', '/var/lib/norm/domains/x.cfg'])).toEqual({
      stdout: '',
      stderr: 'Parsing config from /var/lib/norm/domains/x.cfg\nDomain name must be specified.\n',
      exitCode: 1,
    });
  });
});

describe('xl shutdown / destroy / reboot', () => {
  it('passes through ---s-- before the domain disappears (on_poweroff=destroy)', async () => {
    const { host, clock } = setup();
    await createWeb1(host);
    expect(await host.exec(['xl', 'shutdown', 'web1'])).toEqual({
      stdout: '',
      stderr: 'Shutting down domain 1\n',
      exitCode: 0,
    });
    expect((await host.exec(['xl', 'list', 'web1'])).stdout).toContain(' -b---- ');
    clock.advance(200);
    expect((await host.exec(['xl', 'list', 'web1'])).stdout).toContain(' ---s-- ');
    clock.advance(200);
    expect((await host.exec(['xl', 'list', 'web1'])).exitCode).toBe(1);
  });

  it('-w waits for the shutdown', async () => {
    const clock = new ManualClock();
    const host = new SimulatedXenHost({
      clock,
      sleep: (ms) => {
        clock.advance(ms);
        return Promise.resolve();
      },
      timings: { pollMs: 50 },
    });
    await createWeb1(host);
    expect(await host.exec(['xl', 'shutdown', '-w', 'web1'])).toEqual({
      stdout: '',
      stderr: 'Shutting down domain 1\nWaiting for 1 domains\nDomain 1 has been shut down, reason code 0\n',
      exitCode: 0,
    });
  });

  it('reboot restarts the guest under a new domid', async () => {
    const { host, clock } = setup();
    await createWeb1(host);
    expect((await host.exec(['xl', 'reboot', 'web1'])).stderr).toBe('Rebooting domain 1\n');
    clock.advance(200);
    expect((await host.exec(['xl', 'list', 'web1'])).stdout).toContain(' ---sr- ');
    clock.advance(200);
    expect((await host.exec(['xl', 'domid', 'web1'])).stdout).toBe('2\n');
  });

  it('destroy refuses domain 0 and reports missing ids', async () => {
    const { host } = setup();
    expect(await host.exec(['xl', 'destroy', '0'])).toEqual({
      stdout: '',
      stderr:
        'Not destroying domain 0; use -f to force.\nThis can only be done when using a disaggregated hardware domain and toolstack.\n\n',
      exitCode: 1,
    });
    const r = await host.exec(['xl', 'destroy', '42']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.endsWith('Domain 42:Destruction of domain failed\ndestroy failed (rc=-21)\n')).toBe(true);
  });

  it('missing arguments print the usage on stdout and exit 2', async () => {
    const { host } = setup();
    const r = await host.exec(['xl', 'destroy']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe("'xl destroy' requires at least 1 argument.\n\n");
    expect(
      r.stdout.startsWith(
        'Usage: xl [-vf] destroy [options] <Domain>\n\n\nTerminate a domain immediately.\n\nOptions:\n\n-f ',
      ),
    ).toBe(true);
    expect(await host.exec(['xl', 'shutdown'])).toEqual({
      stdout: '',
      stderr: 'You must specify -a or a domain id.\n\n',
      exitCode: 1,
    });
  });
});

describe('xl uptime', () => {
  it('grows with the clock', async () => {
    const { host, clock } = setup();
    await createWeb1(host);
    clock.advance(3_725_000);
    const lines = (await host.exec(['xl', 'uptime', 'web1'])).stdout.split('\n');
    expect(lines[0]).toBe(`Name${' '.repeat(30)}  ID Uptime`);
    expect(lines[1]).toBe(`${'web1'.padEnd(33)}    1  1:02:05`);
  });
});
