import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig } from '@norm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../../apps/api/src/api-app';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { aCatalogue, aHostRow, type Catalogue } from '../vm-requests/builders';

interface Json {
  [k: string]: unknown;
}

/** The three-step checklist: policy, network-team, and security for pets only. */
const POLICY = `
steps:
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

describe('the approval checklist over HTTP', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let app: NestFastifyApplication;
  let admin: string;
  let alice: string;
  let net: string;
  let sec: string;
  let cat: Catalogue;

  const call = async (
    token: string,
    method: 'GET' | 'POST',
    url: string,
    payload?: unknown,
  ): Promise<{ status: number; body: Json & Json[] }> => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(payload === undefined ? {} : { payload: payload as Json }),
    });
    return { status: res.statusCode, body: res.json<Json & Json[]>() };
  };

  const principal = async (name: string, roles: string[], groups: string[] = []): Promise<string> => {
    const p = await call(admin, 'POST', '/v1/principals', { kind: 'person', name, roles, groups });
    const t = await call(admin, 'POST', `/v1/principals/${String(p.body.id)}/tokens`, { name: 'cli' });
    return String(t.body.token);
  };

  const request = (lifecycleClass: 'cattle' | 'pet'): Json => ({
    name: `${lifecycleClass}-${Math.random().toString(36).slice(2, 8)}`,
    vcpus: 1,
    memoryMb: 512,
    diskGb: 1,
    imageId: cat.image.id,
    networkId: cat.network.id,
    lifecycleClass,
  });

  const inboxIds = async (token: string): Promise<string[]> =>
    (await call(token, 'GET', '/v1/approvals/inbox')).body.map((i) => String(i.requestId));

  beforeAll(async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'norm-approvals-'));
    const policyPath = join(stateDir, 'approval-policy.yaml');
    writeFileSync(policyPath, POLICY);
    const config = loadConfig({
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_STATE_DIR: stateDir,
      NORM_LOG_LEVEL: 'silent',
      NORM_APPROVAL_POLICY: policyPath,
    });
    app = await createApiApp({ config });
    await app.init();
    admin = await expectEventually(() => readFileSync(join(stateDir, 'admin-token'), 'utf8').trim());
    alice = await principal('alice', ['requester']);
    net = await principal('nina', ['approver'], ['network-team']);
    sec = await principal('sam', ['approver'], ['security-team']);
    await aHostRow(db.dataSource);
    cat = await aCatalogue(db.dataSource);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('shows the active checklist and previews a pet and a cattle request', async () => {
    const policy = await call(net, 'GET', '/v1/approval-policy');
    expect(policy.status).toBe(200);
    expect((policy.body.steps as Json[]).map((s) => [s.name, s.kind, s.automatic])).toEqual([
      ['policy', 'quota', true],
      ['network', 'group', false],
      ['security', 'group', false],
    ]);
    const pet = await call(net, 'POST', '/v1/approval-policy/preview', request('pet'));
    expect(pet.status).toBe(200);
    expect((pet.body.steps as Json[]).map((s) => [s.step, s.outcome])).toEqual([
      ['policy', 'approve'],
      ['network', 'would_wait'],
      ['security', 'would_wait'],
    ]);
    const cattle = await call(net, 'POST', '/v1/approval-policy/preview', request('cattle'));
    expect((cattle.body.steps as Json[]).map((s) => s.outcome)).toEqual(['approve', 'would_wait', 'skipped']);
    expect((await call(net, 'POST', '/v1/approval-policy/preview', { name: 'x' })).status).toBe(400);
  });

  it('drives a cattle and a pet request through inbox and who-must-act to approved', async () => {
    const cattle = await call(alice, 'POST', '/v1/vm-requests', request('cattle'));
    const pet = await call(alice, 'POST', '/v1/vm-requests', request('pet'));
    expect([cattle.status, pet.status]).toEqual([201, 201]);
    const cattleId = String(cattle.body.id);
    const petId = String(pet.body.id);
    expect(cattle.body.mustAct).toEqual([
      expect.objectContaining({ step: 'network', groups: ['network-team'] }),
    ]);
    expect(await inboxIds(net)).toEqual([cattleId, petId]);
    expect(await inboxIds(sec)).toEqual([]);

    // A requester cannot decide; security cannot decide network's step; a reject needs a comment.
    expect(
      (
        await call(alice, 'POST', `/v1/vm-requests/${cattleId}/approvals`, {
          step: 'network',
          decision: 'approve',
        })
      ).status,
    ).toBe(403);
    expect(
      (
        await call(sec, 'POST', `/v1/vm-requests/${cattleId}/approvals`, {
          step: 'network',
          decision: 'approve',
        })
      ).status,
    ).toBe(403);
    expect(
      (
        await call(net, 'POST', `/v1/vm-requests/${cattleId}/approvals`, {
          step: 'network',
          decision: 'reject',
        })
      ).status,
    ).toBe(400);

    const cattleDone = await call(net, 'POST', `/v1/vm-requests/${cattleId}/approvals`, {
      step: 'network',
      decision: 'approve',
      comment: 'VLAN ok',
    });
    expect(cattleDone.status).toBe(200);
    expect(cattleDone.body).toMatchObject({ state: 'approved', mustAct: [] });
    expect((cattleDone.body.approvalPlan as Json[]).map((p) => p.status)).toEqual([
      'approved',
      'approved',
      'skipped',
    ]);

    const petAfterNet = await call(net, 'POST', `/v1/vm-requests/${petId}/approvals`, {
      step: 'network',
      decision: 'approve',
    });
    expect(petAfterNet.body).toMatchObject({ state: 'pending_approval' });
    expect(petAfterNet.body.mustAct).toEqual([
      expect.objectContaining({ step: 'security', groups: ['security-team'], remaining: 1 }),
    ]);
    expect(await inboxIds(net)).toEqual([]);
    expect(await inboxIds(sec)).toEqual([petId]);
    const got = await call(alice, 'GET', `/v1/vm-requests/${petId}`);
    expect((got.body.mustAct as Json[])[0]?.summary).toMatch(
      /^security waits on one approval from security-team/,
    );

    const petDone = await call(sec, 'POST', `/v1/vm-requests/${petId}/approvals`, {
      step: 'security',
      decision: 'approve',
    });
    expect(petDone.body).toMatchObject({ state: 'approved', hostId: null });
    expect(await inboxIds(sec)).toEqual([]);
    // Deciding a request that has moved on is a conflict, not a silent success.
    expect(
      (
        await call(sec, 'POST', `/v1/vm-requests/${petId}/approvals`, {
          step: 'security',
          decision: 'approve',
        })
      ).status,
    ).toBe(409);
  });

  it('a webhook callback with a bad signature is refused without a token', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/approvals/callbacks/00000000-0000-4000-8000-000000000000/network',
      payload: { decision: 'approve' },
      headers: { 'x-norm-signature': 'sha256=00' },
    });
    // `network` is a group step, not a webhook: nothing to call back.
    expect(res.statusCode).toBe(404);
  });
});
