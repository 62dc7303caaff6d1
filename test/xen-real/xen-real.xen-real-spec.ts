import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { type AppProcess, startApp } from '../harness/app-process';
import { REDIS_URL } from '../harness/env';
import { expectEventually } from '../harness/expect-eventually';
import { useTestDatabase } from '../harness/test-database';
import { useRedisPrefix } from '../harness/test-redis';
import {
  asNorm,
  asRoot,
  labFingerprint,
  labScript,
  note,
  NORM_KEY,
  saveOutput,
  type Shell,
  SSH_PORT,
  step,
} from './harness/lab';

type Json = Record<string, unknown>;

/** `xl list` as a name → state map (the header line and Domain-0 included). */
function xlNames(list: Shell): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of list.stdout.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 5 && f[0]) out.set(f[0], f[4] ?? '');
  }
  return out;
}

function xlInfo(info: Shell): Record<string, string> {
  return Object.fromEntries(
    info.stdout
      .split('\n')
      .map((l) => /^(\S+)\s*:\s*(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
}

/**
 * Norm against a real Xen 4.17 host (the lab in test/xen-real/lab, under QEMU), driven through
 * the HTTP API as an operator drives it. The steps build on each other, in order.
 */
describe('Norm against a real Xen 4.17 host', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  const apiPort = inject('xenlabApiPort');
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const scratch = mkdtempSync(join(tmpdir(), 'norm-xen-real-'));
  const inventory = join(scratch, 'hosts.ini');
  let api: AppProcess;
  let worker: AppProcess;
  let admin: string;
  let requester: string;
  let approver: string;
  let hostId: string;
  let networkId: string;
  const instances: Record<string, Json> = {};

  const call = async (token: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${apiUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json };
  };
  const xlList = () => asNorm('sudo -n xl list');
  const lvs = () => asNorm('sudo -n lvs --noheadings -o lv_name,lv_size,origin,lv_attr vg0');
  const guestConsole = (name: string) => asRoot(`tail -n 6 /var/log/xen/console/guest-${name}.log`);

  beforeAll(async () => {
    // The static inventory the ansible deregistration target edits: one line per instance.
    writeFileSync(inventory, '[lab]\nweb-1\nweb-2\n');
    const policy = join(scratch, 'approval-policy.yaml');
    writeFileSync(
      policy,
      [
        'steps:',
        '  - { name: quota, kind: quota }',
        '  - { name: naming, kind: naming }',
        '  - { name: capacity, kind: capacity }',
        '  - { name: ops, kind: group, groups: [ops], quorum: any }',
        '',
      ].join('\n'),
    );
    const env: Record<string, string> = {
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_STATE_DIR: join(scratch, 'state'),
      NORM_API_HOST: '127.0.0.1',
      NORM_API_PORT: String(apiPort),
      NORM_SSH_KEY_PATH: NORM_KEY,
      NORM_APPROVAL_POLICY: policy,
      NORM_VM_MIN_MEMORY_MB: '128',
      // The lab's guests reach this API as 10.0.2.100:8080 (QEMU guestfwd to apiPort).
      NORM_GUEST_API_URL: 'http://10.0.2.100:8080',
      // 15 s beats, 45 s timeout: two guests stay below the reaper's intake-drop baseline (10 a
      // minute), so one of them falling silent is judged as one instance, not as a sick fleet.
      NORM_GUEST_HEARTBEAT_INTERVAL: '15s',
      NORM_HEARTBEAT_TIMEOUT: '45s',
      NORM_REAPER_MODE: 'direct',
      NORM_REAPER_STARTUP_GRACE: '45s',
      NORM_REAPER_ALIVE_SILENT_GRACE: '15s',
      NORM_HOST_SYNC_INTERVAL: '5s',
      NORM_DEREGISTRATION_TARGETS: `ansible:lab=${inventory}`,
      NORM_DEREGISTRATION_INTERVAL: '2s',
      // Emulated dom0 on a shared machine: generous, as for a loaded production host.
      NORM_SSH_CONNECT_TIMEOUT: '60s',
      NORM_SSH_COMMAND_TIMEOUT: '300s',
      // One create at a time: libxl's block hotplug script timed out (40 s) with two at once
      // on a loaded machine ("killing execution of /etc/xen/scripts/block add").
      NORM_PROVISION_HOST_CONCURRENCY: '1',
    };
    api = startApp('api', env);
    await expectEventually(
      async () => {
        expect((await fetch(`${apiUrl}/healthz`)).status).toBe(200);
      },
      { timeoutMs: 90_000, intervalMs: 250 },
    );
    admin = readFileSync(join(scratch, 'state', 'admin-token'), 'utf8').trim();
    worker = startApp('worker', env);
    await worker.waitForLine((l) => l.msg === 'worker started', 90_000);
    const person = async (name: string, roles: string[], groups: string[]) => {
      const p = await call(admin, 'POST', '/v1/principals', { kind: 'person', name, roles, groups });
      expect(p.status).toBe(201);
      const t = await call(admin, 'POST', `/v1/principals/${String(p.body.id)}/tokens`, { name: 'cli' });
      return String(t.body.token);
    };
    requester = await person('carol', ['requester'], []);
    approver = await person('olga', ['approver'], ['ops']);
  }, 240_000);

  afterAll(async () => {
    await worker?.stop('SIGTERM');
    await api?.stop('SIGTERM');
    if (worker) saveOutput('worker', worker.lines, worker.stderr);
    if (api) saveOutput('api', api.lines, api.stderr);
  });

  // Each step builds on the one before (and step 7 stops the lab): after a failure the rest
  // would only fail for that reason, so they fail at once, naming it.
  let failed: string | undefined;
  beforeEach(({ task, onTestFailed }) => {
    if (failed) throw new Error(`not run: step "${failed}" failed`);
    onTestFailed(() => {
      failed = task.name;
    });
  });

  it('1. registers the host as norm with sudo and its key pinned; a wrong fingerprint is refused', async () => {
    step('1. register the host');
    const fingerprint = await labFingerprint();
    const host = { name: 'xenlab', address: '127.0.0.1', port: SSH_PORT, sshUser: 'norm', sudo: true };
    const wrong = `SHA256:${'A'.repeat(43)}`;
    const refused = await call(admin, 'POST', '/v1/hosts', { ...host, hostKeyFingerprint: wrong });
    note(`POST /v1/hosts with ${wrong} -> ${refused.status} ${JSON.stringify(refused.body)}`);
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.status).toBeLessThan(500);
    expect((await call(admin, 'GET', '/v1/hosts')).body).toEqual([]);
    const registered = await call(admin, 'POST', '/v1/hosts', { ...host, hostKeyFingerprint: fingerprint });
    note(`POST /v1/hosts with ${fingerprint} -> ${registered.status}`);
    expect(registered.status).toBe(201);
    expect(registered.body).toMatchObject({ sshUser: 'norm', sudo: true, hostKeyFingerprint: fingerprint });
    hostId = String(registered.body.id);
    await asNorm('id; sudo -n -l');
  });

  it('2. syncs, and reports the capacity xl info reports', async () => {
    step('2. sync and capacity');
    const info = xlInfo(await asNorm('sudo -n xl info'));
    await asNorm('sudo -n vgs');
    const host = await expectEventually(
      async () => {
        const h = (await call(admin, 'GET', `/v1/hosts/${hostId}`)).body;
        expect(h.lastSyncAt).not.toBeNull();
        expect(h.status).toBe('online');
        return h;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    note(`GET /v1/hosts/${hostId}: ${JSON.stringify({ ...host, observedDomains: undefined })}`);
    expect(host.totalMemoryMb).toBe(Number(info.total_memory));
    expect(host.freeMemoryMb).toBe(Number(info.free_memory));
    expect(host.nrCpus).toBe(Number(info.nr_cpus));
    expect(String(host.xenVersion)).toContain(`${info.xen_major}.${info.xen_minor}`);
    expect((host.volumeGroups as Json[]).map((v) => v.name)).toContain('vg0');
  });

  it('3. takes two cattle VMs from the kernel-boot image through approval to running', async () => {
    step('3. request, approve, provision');
    const image = await call(admin, 'POST', '/v1/images', {
      name: 'tiny',
      osLabel: 'busybox',
      boot: {
        method: 'kernel',
        kernel: '/var/lib/norm/images/tiny/vmlinuz',
        ramdisk: '/var/lib/norm/images/tiny/initrd.gz',
        kernelArgs: 'console=hvc0 rdinit=/init quiet',
      },
      defaultDiskGb: 1,
      goldenVolumes: [{ vg: 'vg0', lv: 'golden-tiny' }],
    });
    expect(image.status).toBe(201);
    // QEMU's slirp network; its DHCP pool (.16-.31) stays out of Norm's range.
    const network = await call(admin, 'POST', '/v1/networks', {
      name: 'lab',
      bridge: 'xenbr0',
      cidr: '10.0.2.0/24',
      gateway: '10.0.2.2',
      rangeStart: '10.0.2.40',
      rangeEnd: '10.0.2.99',
    });
    expect(network.status).toBe(201);
    networkId = String(network.body.id);
    const ids: Record<string, string> = {};
    for (const name of ['web-1', 'web-2']) {
      const created = await call(requester, 'POST', '/v1/vm-requests', {
        name,
        vcpus: 1,
        memoryMb: 128,
        diskGb: 1,
        imageId: image.body.id,
        networkId,
        lifecycleClass: 'cattle',
      });
      expect(created.status).toBe(201);
      expect(created.body.state).toBe('pending_approval');
      ids[name] = String(created.body.id);
      const approved = await call(approver, 'POST', `/v1/vm-requests/${ids[name]}/approvals`, {
        step: 'ops',
        decision: 'approve',
      });
      note(`${name}: approved by olga (ops) -> ${approved.status}`);
      expect(approved.status).toBe(200);
    }
    for (const name of ['web-1', 'web-2']) {
      // Polled by hand rather than with expectEventually: a failed request is final, and its
      // hypervisor error is what the log must show, at once.
      const deadline = Date.now() + 600_000;
      let done: Json;
      for (;;) {
        done = (await call(requester, 'GET', `/v1/vm-requests/${ids[name]}`)).body;
        if (done.state === 'running' || done.state === 'failed' || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 2000));
      }
      if (done.state !== 'running') note(`${name}: ${String(done.state)} ${JSON.stringify(done.error)}`);
      expect(done.state).toBe('running');
      note(`${name}: ${(done.history as Json[]).map((h) => h.to).join(' -> ')}`);
    }
    const list = (await call(requester, 'GET', '/v1/instances?limit=10')).body;
    for (const i of list.items as Json[]) instances[String(i.name)] = i;
    expect(Object.keys(instances).sort()).toEqual(['web-1', 'web-2']);
    // The config Norm placed is root's alone: it carries the instance token.
    const ls = await asNorm('ls -ln /var/lib/norm/domains');
    expect(ls.stdout).toMatch(/-rw------- 1 0 0 .* web-1\.cfg/);
    expect(ls.stdout).not.toContain('staged');
    const read = await asNorm('cat /var/lib/norm/domains/web-1.cfg');
    expect(read.code).not.toBe(0);
    expect(read.stderr).toContain('Permission denied');
  });

  it('4. sees the domains in the real xl list and real heartbeats arrive', async () => {
    step('4. xl list and heartbeats');
    const names = xlNames(await xlList());
    expect(names.has('web-1') && names.has('web-2')).toBe(true);
    await asNorm('sudo -n xl list -l web-1 | grep -E "\\"(name|kernel|ramdisk)\\"|mac|bridge|target"');
    await lvs();
    for (const name of ['web-1', 'web-2']) {
      const id = String(instances[name]!.id);
      const seen = await expectEventually(
        async () => {
          const i = (await call(admin, 'GET', `/v1/instances/${id}`)).body;
          expect(i.lastHeartbeatAt).not.toBeNull();
          return i;
        },
        { timeoutMs: 120_000, intervalMs: 2000 },
      );
      note(
        `${name}: ip ${String(seen.ip)} mac ${String(seen.mac)} last heartbeat ${String(seen.lastHeartbeatAt)}`,
      );
      const log = await guestConsole(name);
      expect(log.stdout).toMatch(/POST -> HTTP 202 ok/);
      expect(log.stdout).toContain(`eth0 ${String(seen.ip)}/24`);
    }
  });

  it('5. reaps a guest that falls silent, through the real xl: domain, snapshot, IP and MAC gone, targets done', async () => {
    step('5. web-1 falls silent (xl pause, by hand) and is reaped');
    const web1 = instances['web-1']!;
    const id = String(web1.id);
    const paused = await asRoot('xl pause web-1 && xl list web-1');
    expect(paused.code).toBe(0);
    const gone = await expectEventually(
      async () => {
        const i = (await call(admin, 'GET', `/v1/instances/${id}`)).body;
        expect(i.state).toBe('decommissioned');
        return i;
      },
      { timeoutMs: 300_000, intervalMs: 3000 },
    );
    note(`web-1: ${String(gone.state)}`);
    const names = xlNames(await xlList());
    expect(names.has('web-1')).toBe(false);
    expect(names.has('web-2')).toBe(true);
    expect((await lvs()).stdout).not.toContain('web-1-disk0');
    const decisions = (await call(admin, 'GET', `/v1/audit?objectId=${id}&limit=50`)).body;
    const actions = (decisions.items as Json[]).map((e) => String(e.action));
    note(`audit for web-1: ${actions.join(', ')}`);
    expect(actions).toContain('lifecycle.reap.act');
    const targets = (await call(admin, 'GET', `/v1/deregistrations?instance=${id}`))
      .body as unknown as Json[];
    note(`deregistrations: ${JSON.stringify(targets.map((t) => ({ target: t.target, status: t.status })))}`);
    expect(targets.length).toBeGreaterThan(0);
    expect(targets.every((t) => t.status === 'done')).toBe(true);
    expect(readFileSync(inventory, 'utf8')).toBe('[lab]\nweb-2\n');
    // Released: the pair is free again, and the live instance kept its own.
    const usage = (await call(admin, 'GET', `/v1/networks/${networkId}`)).body;
    note(`network after the reap: ${JSON.stringify(usage)}`);
    expect(usage.usage).toMatchObject({ allocated: 1 });
  });

  it('6. reports a domain made by hand with xl as an orphan and leaves it alone', async () => {
    step('6. a hand-made domain');
    const cfg = [
      'name = "hand-made"',
      'type = "pv"',
      'kernel = "/var/lib/norm/images/tiny/vmlinuz"',
      'ramdisk = "/var/lib/norm/images/tiny/initrd.gz"',
      'extra = "console=hvc0 rdinit=/init quiet"',
      'memory = 128',
      'vcpus = 1',
    ].join('\n');
    const made = await asRoot(
      `printf '%s\\n' '${cfg}' > /root/hand-made.cfg && xl create /root/hand-made.cfg`,
      120_000,
    );
    expect(made.code).toBe(0);
    const drift = await expectEventually(
      async () => {
        const d = (await call(admin, 'GET', '/v1/drift')).body;
        expect(JSON.stringify(d)).toContain('hand-made');
        return d;
      },
      { timeoutMs: 60_000, intervalMs: 2000 },
    );
    const entries = (drift.entries as Json[]).filter((e) => JSON.stringify(e).includes('hand-made'));
    note(`drift: ${JSON.stringify(entries)}`);
    expect(entries.map((e) => e.kind)).toEqual(['orphan_domain']);
    // Three reaper cycles later it is still there, and nothing was done to it.
    await new Promise((r) => setTimeout(r, 30_000));
    expect(xlNames(await xlList()).has('hand-made')).toBe(true);
    const touched = (await call(admin, 'GET', '/v1/audit?limit=200')).body;
    expect(JSON.stringify(touched.items)).not.toMatch(/"action":"(instance|lifecycle)[^"]*"[^}]*hand-made/);
  });

  it('7. stops the whole lab host and reaps nothing while it is unreachable', async () => {
    step('7. the host goes away');
    const web2 = String(instances['web-2']!.id);
    await labScript('stop.sh');
    note('lab QEMU killed: the host is gone, with web-2 on it');
    await expectEventually(
      async () => {
        const h = (await call(admin, 'GET', `/v1/hosts/${hostId}`)).body;
        expect(h.status).toBe('unreachable');
      },
      { timeoutMs: 120_000, intervalMs: 2000 },
    );
    note('host status: unreachable');
    // Past web-2's deadline (45 s after its last beat) and several reaper cycles more.
    await expectEventually(
      async () => {
        const preview = (await call(admin, 'GET', '/v1/lifecycle/preview')).body;
        expect(JSON.stringify(preview)).toContain(web2);
        return preview;
      },
      { timeoutMs: 120_000, intervalMs: 3000 },
    ).then((p) => note(`lifecycle preview: ${JSON.stringify(p)}`));
    await new Promise((r) => setTimeout(r, 30_000));
    const i = (await call(admin, 'GET', `/v1/instances/${web2}`)).body;
    note(`web-2: ${String(i.state)}`);
    expect(i.state).toBe('running');
    const audit = (await call(admin, 'GET', `/v1/audit?objectId=${web2}&limit=50`)).body;
    const actions = (audit.items as Json[]).map((e) => String(e.action));
    note(`audit for web-2: ${actions.join(', ')}`);
    expect(actions).not.toContain('lifecycle.reap.act');
    const alerts = (await call(admin, 'GET', '/v1/audit?action=lifecycle.host.alert&limit=10')).body;
    expect((alerts.items as Json[]).length).toBeGreaterThan(0);
  });
});
