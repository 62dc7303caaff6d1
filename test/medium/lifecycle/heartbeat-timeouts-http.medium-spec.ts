import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { HeartbeatBuffer, IdentityService, loadConfig } from '@norm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../../apps/api/src/api-app';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { insertInstance } from '../inventory/builders';
import { aCatalogue, aHostRow, aPrincipal, type Catalogue } from '../vm-requests/builders';

interface Json {
  [k: string]: unknown;
}

interface BeatRow {
  heartbeat_timeout_s: number | null;
  last_heartbeat_at: Date | null;
  heartbeat_deadline_at: Date | null;
}

/**
 * Heartbeat timeouts per lifecycle class (settings) and per instance (set on the request,
 * changed by PATCH), over HTTP against real Postgres and Redis.
 */
describe('heartbeat timeouts per class and per instance', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let app: NestFastifyApplication;
  let buffer: HeartbeatBuffer;
  let admin: string;
  let alice: { id: string; token: string };
  let cat: Catalogue;

  const call = async (
    token: string,
    method: 'GET' | 'POST' | 'PATCH',
    url: string,
    payload?: unknown,
  ): Promise<{ status: number; body: Json }> => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(payload === undefined ? {} : { payload: payload as Json }),
    });
    return { status: res.statusCode, body: res.json<Json>() };
  };

  const row = async (id: string): Promise<BeatRow> =>
    (
      await db.dataSource.query<BeatRow[]>(
        `SELECT "heartbeat_timeout_s", "last_heartbeat_at", "heartbeat_deadline_at" FROM "instances" WHERE "id" = $1`,
        [id],
      )
    )[0]!;

  const count = async (sql: string, params: unknown[] = []): Promise<number> =>
    (await db.dataSource.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM ${sql}`, params))[0]!.n;

  /** An instance with its own token, beaten once so it has a last-seen. */
  const beaten = async (over: { lifecycleClass?: 'cattle' | 'pet'; ownerId?: string } = {}) => {
    const id = await insertInstance(db.dataSource, {
      hostId: null,
      domainName: `vm-${Math.random().toString(36).slice(2, 8)}`,
      ...over,
    });
    const { token } = await app.get(IdentityService).createInstanceToken(aPrincipal(['admin']), id);
    const res = await app.inject({
      method: 'POST',
      url: `/v1/instances/${id}/heartbeat`,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.statusCode).toBe(202);
    await buffer.flush();
    return id;
  };

  const window = (r: BeatRow): number => r.heartbeat_deadline_at!.getTime() - r.last_heartbeat_at!.getTime();

  beforeAll(async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'norm-hbt-'));
    const config = loadConfig({
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_STATE_DIR: stateDir,
      NORM_LOG_LEVEL: 'silent',
      NORM_HEARTBEAT_TIMEOUT: '200s',
      NORM_HEARTBEAT_TIMEOUT_CATTLE: '120s',
      NORM_HEARTBEAT_TIMEOUT_PET: '10m',
      NORM_HEARTBEAT_TIMEOUT_MIN: '30s',
      NORM_HEARTBEAT_TIMEOUT_MAX: '1h',
    });
    app = await createApiApp({ config });
    await app.init();
    buffer = app.get(HeartbeatBuffer);
    admin = await expectEventually(() => readFileSync(join(stateDir, 'admin-token'), 'utf8').trim());
    const p = await call(admin, 'POST', '/v1/principals', {
      kind: 'person',
      name: 'alice',
      roles: ['requester'],
    });
    const t = await call(admin, 'POST', `/v1/principals/${String(p.body.id)}/tokens`, { name: 'cli' });
    alice = { id: String(p.body.id), token: String(t.body.token) };
    await aHostRow(db.dataSource);
    cat = await aCatalogue(db.dataSource);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('each class gets its own setting; unset classes fall back to NORM_HEARTBEAT_TIMEOUT', async () => {
    const cattle = await beaten({ lifecycleClass: 'cattle' });
    const pet = await beaten({ lifecycleClass: 'pet' });
    expect(window(await row(cattle))).toBe(120_000);
    expect(window(await row(pet))).toBe(600_000);
    // The fallback, on the config alone (no HTTP needed to read a setting).
    expect(loadConfig({ NORM_HEARTBEAT_TIMEOUT: '200s' })).toMatchObject({
      heartbeatTimeoutMs: 200_000,
      heartbeatTimeoutCattleMs: undefined,
      heartbeatTimeoutPetMs: undefined,
    });
  });

  it('POST /v1/vm-requests takes heartbeatTimeout as a bounded duration; a bad one is a 400 and records nothing', async () => {
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
    const before = await count(`"vm_requests"`);
    for (const [value, message] of [
      ['10s', 'at least 30s'],
      ['2h', 'at most 3600s'],
      ['1500ms', 'a whole number of seconds'],
      ['soon', 'is not a duration'],
      [300, 'string'],
    ] as const) {
      const res = await call(alice.token, 'POST', '/v1/vm-requests', body({ heartbeatTimeout: value }));
      expect(res.status, String(value)).toBe(400);
      expect(JSON.stringify(res.body), String(value)).toContain('heartbeatTimeout');
      expect(JSON.stringify(res.body).toLowerCase(), String(value)).toContain(message.toLowerCase());
    }
    expect(await count(`"vm_requests"`)).toBe(before);

    const ok = await call(alice.token, 'POST', '/v1/vm-requests', body({ heartbeatTimeout: '5m' }));
    expect(ok.status).toBe(201);
    expect(ok.body.heartbeatTimeoutS).toBe(300);
    const plain = await call(alice.token, 'POST', '/v1/vm-requests', body());
    expect(plain.status).toBe(201);
    expect(plain.body.heartbeatTimeoutS).toBeNull();
    // Part of the body an Idempotency-Key protects: the same key with another timeout is a conflict.
    const again = body({ heartbeatTimeout: '5m' });
    const first = await app.inject({
      method: 'POST',
      url: '/v1/vm-requests',
      headers: { authorization: `Bearer ${alice.token}`, 'idempotency-key': 'hbt-1' },
      payload: again,
    });
    expect(first.statusCode).toBe(201);
    const other = await app.inject({
      method: 'POST',
      url: '/v1/vm-requests',
      headers: { authorization: `Bearer ${alice.token}`, 'idempotency-key': 'hbt-1' },
      payload: { ...again, heartbeatTimeout: '6m' },
    });
    expect(other.statusCode).toBe(409);
  });

  it('PATCH /v1/instances/:id sets the timeout, moves the deadline at once, audits it; null goes back to the class', async () => {
    const id = await beaten();
    const { last_heartbeat_at: seen } = await row(id);

    const set = await call(admin, 'PATCH', `/v1/instances/${id}`, { heartbeatTimeout: '45s' });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ id, heartbeatTimeoutS: 45 });
    expect(new Date(String(set.body.heartbeatDeadlineAt)).getTime()).toBe(seen!.getTime() + 45_000);
    expect(await row(id)).toMatchObject({ heartbeat_timeout_s: 45 });
    expect(window(await row(id))).toBe(45_000);
    const [audit] = await db.dataSource.query<Array<{ before: Json; after: Json; actor: string }>>(
      `SELECT "before", "after", "actor" FROM "audit_events" WHERE "object_id" = $1 AND "action" = 'instance.heartbeat-timeout'`,
      [id],
    );
    expect(audit).toMatchObject({
      before: { heartbeatTimeoutS: null },
      after: { heartbeatTimeoutS: 45, classTimeoutS: 120 },
    });

    // The next beat keeps to the instance's own timeout.
    await new Promise((r) => setTimeout(r, 5));
    const { token } = await app.get(IdentityService).createInstanceToken(aPrincipal(['admin']), id);
    await app.inject({
      method: 'POST',
      url: `/v1/instances/${id}/heartbeat`,
      headers: { authorization: `Bearer ${token}` },
    });
    await buffer.flush();
    expect((await row(id)).last_heartbeat_at!.getTime()).toBeGreaterThan(seen!.getTime());
    expect(window(await row(id))).toBe(45_000);

    const cleared = await call(admin, 'PATCH', `/v1/instances/${id}`, { heartbeatTimeout: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body.heartbeatTimeoutS).toBeNull();
    expect(window(await row(id))).toBe(120_000);
  });

  it('a bad PATCH is a 4xx and changes nothing: bounds, unknown fields, other owners, dead instances', async () => {
    const mine = await beaten({ ownerId: alice.id });
    const theirs = await beaten();
    const dead = await insertInstance(db.dataSource, {
      hostId: null,
      domainName: `gone-${Math.random().toString(36).slice(2, 8)}`,
      state: 'decommissioned',
    });
    const audits = () => count(`"audit_events" WHERE "action" = 'instance.heartbeat-timeout'`);
    const before = { audits: await audits(), mine: await row(mine) };

    expect((await call(admin, 'PATCH', `/v1/instances/${mine}`, { heartbeatTimeout: '5s' })).status).toBe(
      400,
    );
    expect((await call(admin, 'PATCH', `/v1/instances/${mine}`, { heartbeatTimeout: '2h' })).status).toBe(
      400,
    );
    expect((await call(admin, 'PATCH', `/v1/instances/${mine}`, {})).status).toBe(400);
    expect(
      (await call(admin, 'PATCH', `/v1/instances/${mine}`, { heartbeatTimeout: '60s', state: 'stopped' }))
        .status,
    ).toBe(400);
    // Someone else's instance is not even visible to a requester; a finished one has no timeout to change.
    expect(
      (await call(alice.token, 'PATCH', `/v1/instances/${theirs}`, { heartbeatTimeout: '60s' })).status,
    ).toBe(404);
    expect((await call(admin, 'PATCH', `/v1/instances/${dead}`, { heartbeatTimeout: '60s' })).status).toBe(
      409,
    );
    const instanceToken = (await app.get(IdentityService).createInstanceToken(aPrincipal(['admin']), mine))
      .token;
    expect(
      (await call(instanceToken, 'PATCH', `/v1/instances/${mine}`, { heartbeatTimeout: '60s' })).status,
    ).toBe(403);
    expect(await audits()).toBe(before.audits);
    expect(await row(mine)).toEqual(before.mine);

    // The owner may set it on their own instance, within the same bounds.
    const own = await call(alice.token, 'PATCH', `/v1/instances/${mine}`, { heartbeatTimeout: '1h' });
    expect(own).toMatchObject({ status: 200, body: { heartbeatTimeoutS: 3600 } });
    expect(await audits()).toBe(before.audits + 1);
  });
});
