import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostRepository } from '@norm/inventory';
import { type SimulatedFleet, startSimulatedFleet } from '@norm/xen/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, freePort, startApp } from '../../harness/app-process';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { type ApiProcess, startApi } from '../identity/api-process';

type Json = Record<string, unknown>;

/** The three-step checklist: policy, network-team, and security for pets only. */
const POLICY = `steps:
  - name: policy
    kind: quota
  - name: network
    kind: group
    groups: [network-team]
  - name: security
    kind: group
    groups: [security-team]
    when:
      lifecycleClass: [pet]
`;

/**
 * Real api and worker processes with a policy file: a cattle and a pet request wait on their
 * teams, who find them in their inbox and approve over HTTP, and both end running on a
 * simulated host. "Who must act" and the inboxes are checked at every stage.
 */
describe('the approval checklist end to end', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let fleet: SimulatedFleet;
  let api: ApiProcess;
  let worker: AppProcess;
  let admin: string;
  let policyPath: string;

  const call = async (
    token: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Json & Json[] }> => {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Json & Json[] };
  };

  const principal = async (name: string, roles: string[], groups: string[] = []): Promise<string> => {
    const p = await call(admin, 'POST', '/v1/principals', { kind: 'person', name, roles, groups });
    return String(
      (await call(admin, 'POST', `/v1/principals/${String(p.body.id)}/tokens`, { name: 'cli' })).body.token,
    );
  };

  const inbox = async (token: string): Promise<string[]> =>
    (await call(token, 'GET', '/v1/approvals/inbox')).body.map((i) => String(i.requestId));

  const mustAct = async (token: string, id: string): Promise<unknown[]> =>
    ((await call(token, 'GET', `/v1/vm-requests/${id}`)).body.mustAct as Json[]).map((m) => [
      m.step,
      m.groups,
    ]);

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'norm-approvals-e2e-'));
    policyPath = join(dir, 'approval-policy.yaml');
    writeFileSync(policyPath, POLICY);
    fleet = await startSimulatedFleet({ count: 2, mode: 'inprocess' });
    const hosts = new HostRepository(db.dataSource.manager);
    for (const h of fleet.hosts)
      await hosts.create(
        {
          name: h.name,
          address: h.address,
          port: h.port,
          sshUser: h.user,
          sudo: false,
          hostKeyFingerprint: h.fingerprint,
          labels: {},
          limits: {},
        },
        {
          totalMemoryMb: 16_383,
          freeMemoryMb: 14_000,
          nrCpus: 4,
          xenVersion: '4.17.5',
          storageTotalMb: 512 * 1024,
          storageFreeMb: 500 * 1024,
          volumeGroups: [{ name: 'vg0', sizeMb: 512 * 1024, freeMb: 500 * 1024 }],
          domains: [],
        },
        new Date(),
      );
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_APPROVAL_POLICY: policyPath,
    };
    api = await startApi(env);
    admin = readFileSync(join(api.stateDir, 'admin-token'), 'utf8').trim();
    worker = startApp('worker', {
      ...env,
      NORM_SSH_KEY_PATH: fleet.clientKey.privateKeyPath,
      NORM_XEN_CONFIG_DIR: fleet.hosts[0]!.configDir,
      NORM_HOST_SYNC_INTERVAL: '1h',
    });
    await worker.waitForLine((l) => l.msg === 'worker started');
  }, 60_000);

  afterAll(async () => {
    await worker?.stop('SIGTERM');
    await api?.stop();
    await fleet?.stop();
  });

  it('drives one cattle and one pet request to running through the teams', async () => {
    const image = await call(admin, 'POST', '/v1/images', {
      name: 'centos7',
      osLabel: 'CentOS 7',
      boot: { method: 'pygrub' },
      defaultDiskGb: 1,
      goldenVolumes: [{ vg: 'vg0', lv: 'golden-tiny' }],
    });
    const network = await call(admin, 'POST', '/v1/networks', {
      name: 'lab',
      bridge: 'xenbr0',
      cidr: '10.78.0.0/24',
      gateway: '10.78.0.1',
      rangeStart: '10.78.0.10',
      rangeEnd: '10.78.0.200',
    });
    expect([image.status, network.status]).toEqual([201, 201]);
    const carol = await principal('carol', ['requester']);
    const nina = await principal('nina', ['approver'], ['network-team']);
    const sam = await principal('sam', ['approver'], ['security-team']);
    const ask = (name: string, lifecycleClass: string) =>
      call(carol, 'POST', '/v1/vm-requests', {
        name,
        vcpus: 1,
        memoryMb: 512,
        diskGb: 2,
        imageId: image.body.id,
        networkId: network.body.id,
        lifecycleClass,
      });

    const policy = await call(nina, 'GET', '/v1/approval-policy');
    expect(policy.body.source).toBe(policyPath);

    // Stage 1: both wait on the network team.
    const cattle = await ask('web-1', 'cattle');
    const pet = await ask('db-1', 'pet');
    expect([cattle.body.state, pet.body.state]).toEqual(['pending_approval', 'pending_approval']);
    const cattleId = String(cattle.body.id);
    const petId = String(pet.body.id);
    expect(await mustAct(carol, cattleId)).toEqual([['network', ['network-team']]]);
    expect(await mustAct(carol, petId)).toEqual([['network', ['network-team']]]);
    expect(await inbox(nina)).toEqual([cattleId, petId]);
    expect(await inbox(sam)).toEqual([]);

    // Stage 2: the network team approves both; the cattle is done, the pet waits on security.
    const c2 = await call(nina, 'POST', `/v1/vm-requests/${cattleId}/approvals`, {
      step: 'network',
      decision: 'approve',
    });
    expect(c2.body.state).toBe('approved');
    const p2 = await call(nina, 'POST', `/v1/vm-requests/${petId}/approvals`, {
      step: 'network',
      decision: 'approve',
    });
    expect(p2.body.state).toBe('pending_approval');
    expect(await mustAct(carol, petId)).toEqual([['security', ['security-team']]]);
    expect(await inbox(nina)).toEqual([]);
    expect(await inbox(sam)).toEqual([petId]);

    // Stage 3: security approves the pet.
    const p3 = await call(sam, 'POST', `/v1/vm-requests/${petId}/approvals`, {
      step: 'security',
      decision: 'approve',
      comment: 'hardened image',
    });
    expect(p3.body.state).toBe('approved');
    expect(await inbox(sam)).toEqual([]);

    for (const [id, name] of [
      [cattleId, 'web-1'],
      [petId, 'db-1'],
    ] as const) {
      const done = await expectEventually(
        async () => {
          const r = await call(carol, 'GET', `/v1/vm-requests/${id}`);
          expect(r.body.state).toBe('running');
          return r.body;
        },
        { timeoutMs: 30_000 },
      );
      expect(done.mustAct).toEqual([]);
      expect(fleet.hosts.some((h) => h.sim.state.findByName(name) !== undefined)).toBe(true);
    }
    const plan = (await call(carol, 'GET', `/v1/vm-requests/${cattleId}`)).body.approvalPlan as Json[];
    expect(plan.map((p) => p.status)).toEqual(['approved', 'approved', 'skipped']);
  }, 90_000);

  it('a worker refuses to boot on a malformed policy, naming the line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'norm-approvals-bad-'));
    const bad = join(dir, 'policy.yaml');
    writeFileSync(
      bad,
      'steps:\n  - name: quota\n    kind: quota\n  - name: net\n    kind: group\n    quorum: most\n',
    );
    const w = startApp('worker', {
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_APPROVAL_POLICY: bad,
      NORM_API_PORT: String(await freePort()),
    });
    const { code } = await w.exited;
    expect(code).not.toBe(0);
    const output = JSON.stringify(w.lines) + w.stderr.join('');
    expect(output).toContain(`approval policy ${bad} is invalid: line 4`);
  }, 30_000);

  it('the api refuses to boot on a malformed policy too, naming the line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'norm-approvals-bad-api-'));
    const bad = join(dir, 'policy.json');
    writeFileSync(
      bad,
      '{"steps": [\n  {"name": "quota", "kind": "quota"},\n  {"name": "Bad Name", "kind": "naming"}\n]}\n',
    );
    const a = startApp('api', {
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_APPROVAL_POLICY: bad,
      NORM_API_PORT: String(await freePort()),
      NORM_STATE_DIR: dir,
    });
    const { code } = await a.exited;
    expect(code).not.toBe(0);
    expect(JSON.stringify(a.lines) + a.stderr.join('')).toContain(
      `approval policy ${bad} is invalid: line 3: steps.1.name`,
    );
  }, 30_000);
});
