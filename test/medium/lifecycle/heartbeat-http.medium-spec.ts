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
import { aPrincipal } from '../vm-requests/builders';

interface BeatRow {
  last_heartbeat_at: Date | null;
  heartbeat_deadline_at: Date | null;
}

describe('POST /v1/instances/:id/heartbeat', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let app: NestFastifyApplication;
  let buffer: HeartbeatBuffer;
  let admin: string;

  const beat = (id: string, token: string, payload?: unknown) =>
    app.inject({
      method: 'POST',
      url: `/v1/instances/${id}/heartbeat`,
      headers: { authorization: `Bearer ${token}`, 'user-agent': 'norm-heartbeat/1' },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });

  const row = async (id: string): Promise<BeatRow> =>
    (
      await db.dataSource.query<BeatRow[]>(
        `SELECT "last_heartbeat_at", "heartbeat_deadline_at" FROM "instances" WHERE "id" = $1`,
        [id],
      )
    )[0]!;

  const instanceWithToken = async (): Promise<{ id: string; token: string }> => {
    const id = await insertInstance(db.dataSource, {
      hostId: null,
      domainName: `vm-${Math.random().toString(36).slice(2, 8)}`,
    });
    const { token } = await app.get(IdentityService).createInstanceToken(aPrincipal(['admin']), id);
    return { id, token };
  };

  beforeAll(async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'norm-hb-'));
    const config = loadConfig({
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_STATE_DIR: stateDir,
      NORM_LOG_LEVEL: 'silent',
      NORM_HEARTBEAT_TIMEOUT: '120s',
    });
    app = await createApiApp({ config });
    await app.init();
    buffer = app.get(HeartbeatBuffer);
    admin = await expectEventually(() => readFileSync(join(stateDir, 'admin-token'), 'utf8').trim());
  });
  afterAll(async () => {
    await app?.close();
  });

  it('accepts the agent payload and stores last-seen and deadline (last seen + timeout) durably', async () => {
    const { id, token } = await instanceWithToken();
    const res = await beat(id, token, { seq: 3, uptime_s: 42 });
    expect(res.statusCode).toBe(202);
    await buffer.flush();
    const r = await row(id);
    expect(r.last_heartbeat_at).not.toBeNull();
    expect(r.heartbeat_deadline_at!.getTime() - r.last_heartbeat_at!.getTime()).toBe(120_000);
  });

  it('an empty body is a beat too; a per-instance timeout overrides the default', async () => {
    const { id, token } = await instanceWithToken();
    await db.dataSource.query(`UPDATE "instances" SET "heartbeat_timeout_s" = 30 WHERE "id" = $1`, [id]);
    expect((await beat(id, token)).statusCode).toBe(202);
    await buffer.flush();
    const r = await row(id);
    expect(r.heartbeat_deadline_at!.getTime() - r.last_heartbeat_at!.getTime()).toBe(30_000);
  });

  it("another instance's id answers 404, an unknown field 400, no token 401", async () => {
    const a = await instanceWithToken();
    const b = await instanceWithToken();
    expect((await beat(b.id, a.token)).statusCode).toBe(404);
    expect((await beat(a.id, a.token, { seq: 1, cpu: 'hot' })).statusCode).toBe(400);
    const anon = await app.inject({ method: 'POST', url: `/v1/instances/${a.id}/heartbeat` });
    expect(anon.statusCode).toBe(401);
    await buffer.flush();
    expect((await row(b.id)).last_heartbeat_at).toBeNull();
  });

  it('many beats become one write per flush, and the flush timer writes without being asked', async () => {
    const instances = await Promise.all(Array.from({ length: 5 }, () => instanceWithToken()));
    for (let k = 0; k < 3; k++)
      for (const i of instances) expect((await beat(i.id, i.token)).statusCode).toBe(202);
    expect(buffer.size).toBe(5);
    await new Promise((r) => setTimeout(r, 600));
    expect(buffer.size).toBe(0);
    for (const i of instances) expect((await row(i.id)).last_heartbeat_at).not.toBeNull();
  });

  it('POST /v1/instances/:id/token gives the owner a heartbeat token once; others 404, none 401, gone 409', async () => {
    const asAdmin = async (url: string, payload: Record<string, unknown>) =>
      (
        await app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${admin}` }, payload })
      ).json<Record<string, unknown>>();
    const tokenFor = async (name: string): Promise<{ id: string; token: string }> => {
      const p = await asAdmin('/v1/principals', { kind: 'person', name, roles: ['requester'] });
      const t = await asAdmin(`/v1/principals/${String(p.id)}/tokens`, { name: 'cli' });
      return { id: String(p.id), token: String(t.token) };
    };
    const owner = await tokenFor(`own-${Math.random().toString(36).slice(2, 8)}`);
    const other = await tokenFor(`oth-${Math.random().toString(36).slice(2, 8)}`);
    const id = await insertInstance(db.dataSource, { hostId: null, domainName: `tk-${Date.now()}` });
    await db.dataSource.query(`UPDATE "instances" SET "owner_id" = $2 WHERE "id" = $1`, [id, owner.id]);
    const issue = (token?: string) =>
      app.inject({
        method: 'POST',
        url: `/v1/instances/${id}/token`,
        ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
      });

    expect((await issue()).statusCode).toBe(401);
    expect((await issue(other.token)).statusCode).toBe(404);
    const res = await issue(owner.token);
    expect(res.statusCode).toBe(201);
    const issued = res.json<{ token: string; view: Record<string, unknown> }>();
    expect(issued.view).toMatchObject({ kind: 'instance', instanceId: id, principalId: null });
    // The secret is base64url and may contain `_` itself: everything after norm_<prefix>_.
    const secret = issued.token.replace(/^norm_[0-9a-f]+_/, '');
    expect(secret.length).toBeGreaterThanOrEqual(40);
    expect(JSON.stringify(issued.view)).not.toContain(secret);
    expect((await beat(id, issued.token)).statusCode).toBe(202);
    await buffer.flush();
    expect((await row(id)).last_heartbeat_at).not.toBeNull();
    const [audit] = await db.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM "audit_events" WHERE "action" = 'token.create' AND "object_type" = 'instance-token' AND "after"->>'instanceId' = $1`,
      [id],
    );
    expect(audit!.n).toBe(1);

    await db.dataSource.query(`UPDATE "instances" SET "state" = 'decommissioned' WHERE "id" = $1`, [id]);
    expect((await issue(admin)).statusCode).toBe(409);
  });

  describe('/v1/lifecycle', () => {
    const call = async (method: 'GET' | 'POST', url: string, token = admin) => {
      const res = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` } });
      return { status: res.statusCode, body: res.json<Record<string, unknown>>() };
    };

    it('status says no reaper leads yet and shows the thresholds; pause and resume are audited', async () => {
      const status = await call('GET', '/v1/lifecycle/status');
      expect(status.status).toBe(200);
      expect(status.body).toMatchObject({
        leaderSeen: false,
        mode: 'two-phase',
        paused: false,
        breaker: null,
      });
      expect(status.body.thresholds).toMatchObject({ heartbeatTimeoutMs: 120_000, startupGraceMs: 180_000 });
      expect((await call('POST', '/v1/lifecycle/actions/pause')).body).toEqual({ paused: true });
      expect((await call('GET', '/v1/lifecycle/status')).body).toMatchObject({ paused: true });
      expect((await call('POST', '/v1/lifecycle/actions/resume')).body).toEqual({ paused: false });
      expect((await call('POST', '/v1/lifecycle/actions/reset-breaker')).status).toBe(202);
      const [row] = await db.dataSource.query<Array<{ n: number }>>(
        `SELECT count(*)::int AS n FROM "audit_events" WHERE "action" LIKE 'lifecycle.%'`,
      );
      expect(row!.n).toBe(3);
    });

    it('preview lists an overdue instance with its signals and the brake holding it', async () => {
      const { id } = await instanceWithToken();
      await db.dataSource.query(
        `UPDATE "instances" SET "heartbeat_deadline_at" = now() - interval '10 minutes' WHERE "id" = $1`,
        [id],
      );
      const preview = await call('GET', '/v1/lifecycle/preview');
      expect(preview.status).toBe(200);
      expect(preview.body.decisions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ instanceId: id, kind: 'alert', alert: 'host-unreachable' }),
        ]),
      );
    });

    it('an instance token may not read or steer the reaper', async () => {
      const { token } = await instanceWithToken();
      expect((await call('GET', '/v1/lifecycle/status', token)).status).toBe(403);
      expect((await call('POST', '/v1/lifecycle/actions/pause', token)).status).toBe(403);
    });
  });

  it('Alertmanager: a resolved InstanceDown is a beat, a firing one a missed beat, others ignored', async () => {
    const up = await instanceWithToken();
    const down = await instanceWithToken();
    const [names] = [
      await db.dataSource.query<Array<{ id: string; name: string }>>(
        `SELECT "id", "name" FROM "instances" WHERE "id" = ANY($1::uuid[])`,
        [[up.id, down.id]],
      ),
    ];
    const nameOf = (id: string): string => names.find((n) => n.id === id)!.name;
    await db.dataSource.query(
      `UPDATE "instances" SET "heartbeat_deadline_at" = now() + interval '1 hour' WHERE "id" = $1`,
      [down.id],
    );
    const res = await app.inject({
      method: 'POST',
      url: '/v1/integrations/alertmanager',
      headers: { authorization: `Bearer ${admin}` },
      payload: {
        version: '4',
        status: 'firing',
        receiver: 'norm',
        alerts: [
          { status: 'resolved', labels: { alertname: 'InstanceDown', instance: `${nameOf(up.id)}:9100` } },
          { status: 'firing', labels: { alertname: 'InstanceDown', instance: `${nameOf(down.id)}:9100` } },
          { status: 'firing', labels: { alertname: 'DiskFull', instance: `${nameOf(down.id)}:9100` } },
          { status: 'firing', labels: { alertname: 'InstanceDown', instance: 'stranger:9100' } },
        ],
      },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ alive: 1, missed: 1, unmatched: 1 });
    await buffer.flush();
    expect((await row(up.id)).last_heartbeat_at).not.toBeNull();
    expect((await row(down.id)).heartbeat_deadline_at!.getTime()).toBeLessThanOrEqual(Date.now());
    const instanceToken = await app.inject({
      method: 'POST',
      url: '/v1/integrations/alertmanager',
      headers: { authorization: `Bearer ${up.token}` },
      payload: { alerts: [] },
    });
    expect(instanceToken.statusCode).toBe(403);
  });

  it('Sensu: a keepalive with status 0 is a beat, non-zero a missed beat, other checks ignored', async () => {
    const a = await instanceWithToken();
    const [{ name }] = (await db.dataSource.query<Array<{ name: string }>>(
      `SELECT "name" FROM "instances" WHERE "id" = $1`,
      [a.id],
    )) as [{ name: string }];
    const send = async (check: string, status: number) => {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/integrations/sensu',
        headers: { authorization: `Bearer ${admin}` },
        payload: {
          entity: { metadata: { name, namespace: 'default' } },
          check: { metadata: { name: check }, status },
        },
      });
      expect(res.statusCode).toBe(200);
      return res.json<{ outcome: string }>().outcome;
    };
    expect(await send('disk', 2)).toBe('ignored');
    expect(await send('keepalive', 0)).toBe('alive');
    await buffer.flush();
    expect((await row(a.id)).last_heartbeat_at).not.toBeNull();
    expect(await send('keepalive', 1)).toBe('missed');
    expect((await row(a.id)).heartbeat_deadline_at!.getTime()).toBeLessThanOrEqual(Date.now());
  });
});
