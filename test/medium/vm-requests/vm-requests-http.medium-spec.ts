import { mkdtempSync, readFileSync } from 'node:fs';
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
import { aCatalogue, aHostRow, type Catalogue } from './builders';

interface Json {
  [k: string]: unknown;
}

describe('vm requests over HTTP', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let app: NestFastifyApplication;
  let admin: string;
  let alice: string;
  let bob: string;
  let cat: Catalogue;

  const call = async (
    token: string,
    method: 'GET' | 'POST',
    url: string,
    payload?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Json; headers: Record<string, unknown> }> => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}`, ...headers },
      ...(payload === undefined ? {} : { payload: payload as Json }),
    });
    return { status: res.statusCode, body: res.json<Json>(), headers: res.headers };
  };

  const requester = async (name: string): Promise<string> => {
    const p = await call(admin, 'POST', '/v1/principals', { kind: 'person', name, roles: ['requester'] });
    const t = await call(admin, 'POST', `/v1/principals/${String(p.body.id)}/tokens`, { name: 'cli' });
    return String(t.body.token);
  };

  const body = (over: Json = {}): Json => ({
    name: `web-${Math.random().toString(36).slice(2, 8)}`,
    vcpus: 1,
    memoryMb: 512,
    diskGb: 1,
    imageId: cat.image.id,
    networkId: cat.network.id,
    lifecycleClass: 'cattle',
    ...over,
  });

  const requestCount = async (): Promise<number> =>
    (await db.dataSource.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM "vm_requests"`))[0]!.n;

  beforeAll(async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'norm-vmreq-'));
    const config = loadConfig({
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_STATE_DIR: stateDir,
      NORM_LOG_LEVEL: 'silent',
      NORM_QUOTA_PER_PRINCIPAL: 'instances=5',
    });
    app = await createApiApp({ config });
    await app.init();
    admin = await expectEventually(() => readFileSync(join(stateDir, 'admin-token'), 'utf8').trim());
    alice = await requester('alice');
    bob = await requester('bob');
    await aHostRow(db.dataSource);
    cat = await aCatalogue(db.dataSource);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('POST answers 201 with the request, its state and approval plan', async () => {
    const res = await call(
      alice,
      'POST',
      '/v1/vm-requests',
      body({ labels: { env: 'dev' }, purpose: 'demo' }),
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ state: 'approved', labels: { env: 'dev' }, purpose: 'demo' });
    expect(res.body).not.toHaveProperty('requestHash');
    expect((res.body.approvalPlan as Json[]).map((p) => p.step)).toEqual(['quota', 'naming']);
    const got = await call(alice, 'GET', `/v1/vm-requests/${String(res.body.id)}`);
    expect(got.status).toBe(200);
    expect((got.body.history as Json[]).map((h) => h.to)).toEqual(['pending_approval', 'approved']);
  });

  it.each([
    ['name', { name: 'Bad_Name' }],
    ['name', { name: '-x' }],
    ['vcpus', { vcpus: 0 }],
    ['vcpus', { vcpus: 1.5 }],
    ['vcpus', { vcpus: 1000 }],
    ['memoryMb', { memoryMb: 'lots' }],
    ['memoryMb', { memoryMb: 16 }],
    ['diskGb', { diskGb: -1 }],
    ['diskGb', { diskGb: 100_000 }],
    ['imageId', { imageId: 'not-a-uuid' }],
    ['imageId', { imageId: '00000000-0000-4000-8000-000000000000' }],
    ['networkId', { networkId: '00000000-0000-4000-8000-000000000000' }],
    ['lifecycleClass', { lifecycleClass: 'kitten' }],
    ['antiAffinityGroup', { antiAffinityGroup: 'Has Spaces' }],
    ['labels.Bad Key', { labels: { 'Bad Key': 'x' } }],
    ['purpose', { purpose: 'x'.repeat(2000) }],
    // A lone surrogate escape parses into a JS string that Postgres cannot store as text or jsonb.
    ['purpose', { purpose: 'half a rocket \ud83d' }],
    ['labels.team', { labels: { team: '\udc00 tail' } }],
    // So does a NUL character (`\u0000` in JSON).
    ['purpose', { purpose: 'nul \u0000 inside' }],
    ['labels.team', { labels: { team: '\u0000' } }],
    ['', { ownerId: '00000000-0000-4000-8000-000000000000' }],
  ])('a bad %s is a 400 naming the field, and nothing is recorded', async (field, over) => {
    const before = await requestCount();
    const res = await call(alice, 'POST', '/v1/vm-requests', body(over));
    expect(res.status).toBe(400);
    const issues = (res.body.error as { details: { issues: Array<{ path: string; message: string }> } })
      .details.issues;
    if (field === '') expect(JSON.stringify(issues)).toContain('ownerId');
    else expect(issues.map((i) => i.path)).toContain(field);
    expect(await requestCount()).toBe(before);
  });

  it('a missing field is named too', async () => {
    const { name: _n, ...rest } = body();
    const res = await call(alice, 'POST', '/v1/vm-requests', rest);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('name');
  });

  it('Idempotency-Key: a replay returns the original, a different body is 409', async () => {
    const b = body();
    const first = await call(alice, 'POST', '/v1/vm-requests', b, { 'idempotency-key': 'abc-1' });
    const again = await call(alice, 'POST', '/v1/vm-requests', b, { 'idempotency-key': 'abc-1' });
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const other = await call(
      alice,
      'POST',
      '/v1/vm-requests',
      { ...b, vcpus: 2 },
      { 'idempotency-key': 'abc-1' },
    );
    expect(other.status).toBe(409);
    expect(other.body.error).toMatchObject({ code: 'IdempotencyConflict' });
    const bad = await call(alice, 'POST', '/v1/vm-requests', b, { 'idempotency-key': 'has spaces' });
    expect(bad.status).toBe(400);
  });

  it('cancel: 200 once, then 409 with the current state; someone else gets 404', async () => {
    const created = await call(alice, 'POST', '/v1/vm-requests', body());
    const id = String(created.body.id);
    expect((await call(bob, 'POST', `/v1/vm-requests/${id}/actions/cancel`, {})).status).toBe(404);
    expect((await call(bob, 'GET', `/v1/vm-requests/${id}`)).status).toBe(404);
    const ok = await call(alice, 'POST', `/v1/vm-requests/${id}/actions/cancel`, {
      reason: 'changed my mind',
    });
    expect(ok.status).toBe(200);
    expect(ok.body.state).toBe('cancelled');
    const again = await call(alice, 'POST', `/v1/vm-requests/${id}/actions/cancel`, {});
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({
      code: 'InvalidTransition',
      details: { currentState: 'cancelled' },
    });
  });

  it('lists with filters and a cursor; bad filters are 400', async () => {
    const page = await call(alice, 'GET', '/v1/vm-requests?limit=1&state=approved');
    expect(page.status).toBe(200);
    expect((page.body.items as Json[]).length).toBe(1);
    expect(typeof page.body.nextCursor).toBe('string');
    const next = await call(
      alice,
      'GET',
      `/v1/vm-requests?limit=1&state=approved&cursor=${String(page.body.nextCursor)}`,
    );
    expect((next.body.items as Json[])[0]?.id).not.toBe((page.body.items as Json[])[0]?.id);
    expect((await call(alice, 'GET', '/v1/vm-requests?state=bogus')).status).toBe(400);
    expect((await call(alice, 'GET', '/v1/vm-requests?cursor=garbage')).status).toBe(400);
    expect((await call(alice, 'GET', '/v1/vm-requests?label=env=dev')).status).toBe(200);
    expect(((await call(bob, 'GET', '/v1/vm-requests')).body.items as Json[]).length).toBe(0);
  });

  it('instances and operations: unknown ids 404, bad action 400, bad wait 400', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    expect((await call(alice, 'GET', `/v1/instances/${missing}`)).status).toBe(404);
    expect((await call(alice, 'GET', `/v1/operations/${missing}`)).status).toBe(404);
    expect((await call(alice, 'POST', `/v1/instances/${missing}/actions/explode`, {})).status).toBe(400);
    expect((await call(alice, 'POST', `/v1/instances/${missing}/actions/stop?wait=forever`, {})).status).toBe(
      400,
    );
    expect((await call(alice, 'POST', `/v1/instances/${missing}/actions/stop`, {})).status).toBe(404);
    expect((await call(alice, 'GET', '/v1/instances')).status).toBe(200);
  });
});
