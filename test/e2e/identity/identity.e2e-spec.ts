import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Role } from '@norm/core';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSuffix } from '../../harness/env';
import { useRedisPrefix } from '../../harness/test-redis';
import { type ApiProcess, call, createMigratedDatabase, startApi } from './api-process';

interface Who {
  id: string;
  token: string;
}

const ROLES: Role[] = ['viewer', 'requester', 'approver', 'operator', 'admin'];
type Expect = Record<Role, number>;
const only = (roles: Role[], yes: number, no: number): Expect =>
  Object.fromEntries(ROLES.map((r) => [r, roles.includes(r) ? yes : no])) as Expect;

describe('identity over HTTP: two API processes on one Postgres and one Redis', () => {
  const prefix = useRedisPrefix();
  let dropDb: () => Promise<void>;
  let dbUrl: string;
  let a: ApiProcess;
  let b: ApiProcess;
  let admin: Who;
  const users = {} as Record<Role | 'requester2', Who>;

  async function principal(name: string, roles: Role[]): Promise<Who> {
    const created = await call(a.url, 'POST', '/v1/principals', admin.token, { kind: 'person', name, roles });
    expect(created.status).toBe(201);
    const id = (created.body as { id: string }).id;
    const token = await call(a.url, 'POST', `/v1/principals/${id}/tokens`, admin.token, { name: 'e2e' });
    expect(token.status).toBe(201);
    return { id, token: (token.body as { token: string }).token };
  }

  beforeAll(async () => {
    ({ url: dbUrl, drop: dropDb } = await createMigratedDatabase());
    const env = {
      DATABASE_URL: dbUrl,
      NORM_REDIS_PREFIX: prefix,
      NORM_AUTH_FAILURE_LIMIT: '100000',
      NORM_RATE_LIMIT_PER_IP: '100000',
      NORM_RATE_LIMIT_PER_TOKEN: '100000',
    };
    a = await startApi(env);
    b = await startApi(env);
    const file = join(a.stateDir, 'admin-token');
    const token = readFileSync(file, 'utf8').trim();
    const self = await call(a.url, 'GET', '/v1/tokens/self', token);
    admin = { id: (self.body as { principal: { id: string } }).principal.id, token };
    for (const role of ROLES) users[role] = await principal(`${role}-${randomSuffix()}`, [role]);
    users.requester2 = await principal(`requester2-${randomSuffix()}`, ['requester']);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await dropDb?.();
  });

  it('bootstraps one admin token into a 0600 file, logs where but never the token', () => {
    const file = join(a.stateDir, 'admin-token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(a.output()).toContain('bootstrap admin token created');
    expect(a.output()).not.toContain(admin.token);
    // The second replica found the admin token and created none.
    expect(b.output()).not.toContain('bootstrap admin token created');
  });

  /** Each route class, its target being someone else's object where it has one. */
  const routes: Array<{
    name: string;
    run: (token: string | undefined) => Promise<{ status: number }>;
    expect: Expect;
  }> = [
    {
      name: 'POST /v1/principals',
      run: (t) =>
        call(a.url, 'POST', '/v1/principals', t, { kind: 'service', name: `svc-${randomSuffix()}` }),
      expect: only(['admin'], 201, 403),
    },
    {
      name: 'GET /v1/principals',
      run: (t) => call(b.url, 'GET', '/v1/principals', t),
      expect: only(ROLES, 200, 0),
    },
    {
      name: 'GET /v1/principals/:id (another principal)',
      run: (t) => call(a.url, 'GET', `/v1/principals/${users.requester2.id}`, t),
      expect: only(['admin'], 200, 404),
    },
    {
      name: 'DELETE /v1/principals/:id (another principal)',
      run: async (t) => {
        const victim = await principal(`victim-${randomSuffix()}`, ['viewer']);
        return call(b.url, 'DELETE', `/v1/principals/${victim.id}`, t);
      },
      expect: only(['admin'], 204, 403),
    },
    {
      name: 'POST /v1/principals/:id/tokens (another principal)',
      run: (t) => call(a.url, 'POST', `/v1/principals/${users.requester2.id}/tokens`, t, { name: 'x' }),
      expect: only(['admin'], 201, 404),
    },
    {
      name: 'GET /v1/principals/:id/tokens (another principal)',
      run: (t) => call(b.url, 'GET', `/v1/principals/${users.requester2.id}/tokens`, t),
      expect: only(['admin'], 200, 404),
    },
    {
      name: 'DELETE /v1/principals/:id/tokens/:tokenId (another principal)',
      run: async (t) => {
        const extra = await call(a.url, 'POST', `/v1/principals/${users.requester2.id}/tokens`, admin.token, {
          name: 'spare',
        });
        const tokenId = (extra.body as { id: string }).id;
        return call(a.url, 'DELETE', `/v1/principals/${users.requester2.id}/tokens/${tokenId}`, t);
      },
      expect: only(['admin'], 204, 404),
    },
    {
      name: 'GET /v1/tokens/self',
      run: (t) => call(b.url, 'GET', '/v1/tokens/self', t),
      expect: only(ROLES, 200, 0),
    },
    {
      name: 'GET /v1/audit',
      run: (t) => call(a.url, 'GET', '/v1/audit?limit=5', t),
      expect: only(['operator', 'admin'], 200, 403),
    },
    {
      name: 'GET /v1/audit/verify',
      run: (t) => call(b.url, 'GET', '/v1/audit/verify', t),
      expect: only(['admin'], 200, 403),
    },
  ];

  describe.each(routes)('$name', (route) => {
    it('refuses an unauthenticated call, and a forged token', async () => {
      expect((await route.run(undefined)).status).toBe(401);
      expect((await route.run('norm_000000000000_' + 'A'.repeat(43))).status).toBe(401);
    });

    it.each(ROLES)('answers %s as the permission table says', async (role) => {
      expect((await route.run(users[role].token)).status).toBe(route.expect[role]);
    });
  });

  it('lets every role manage its own tokens, and answers 404 for another requester exactly like a missing id', async () => {
    const me = users.requester;
    const other = users.requester2;
    expect((await call(a.url, 'GET', `/v1/principals/${me.id}`, me.token)).status).toBe(200);
    const list = await call(a.url, 'GET', '/v1/principals', me.token);
    expect((list.body as Array<{ id: string }>).map((p) => p.id)).toEqual([me.id]);
    const mine = await call(a.url, 'POST', `/v1/principals/${me.id}/tokens`, me.token, { name: 'ci' });
    expect(mine.status).toBe(201);
    const minesId = (mine.body as { id: string }).id;
    expect((await call(b.url, 'GET', `/v1/principals/${me.id}/tokens`, me.token)).status).toBe(200);

    const otherTokens = await call(a.url, 'GET', `/v1/principals/${other.id}/tokens`, admin.token);
    const othersTokenId = (otherTokens.body as Array<{ id: string }>)[0]!.id;
    const probes = [
      ['GET', `/v1/principals/${other.id}`],
      ['GET', `/v1/principals/${other.id}/tokens`],
      ['POST', `/v1/principals/${other.id}/tokens`],
      ['DELETE', `/v1/principals/${other.id}/tokens/${othersTokenId}`],
      // my principal, someone else's token id: still not found
      ['DELETE', `/v1/principals/${me.id}/tokens/${othersTokenId}`],
    ] as const;
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const [method, path] of probes) {
      const res = await call(a.url, method, path, me.token, method === 'POST' ? { name: 'x' } : undefined);
      const ghost = await call(
        a.url,
        method,
        path.replace(other.id, missing),
        me.token,
        method === 'POST' ? { name: 'x' } : undefined,
      );
      expect([method, path, res.status]).toEqual([method, path, 404]);
      expect(ghost.status).toBe(404);
    }
    // the other requester's token still works: none of the probes touched it
    expect((await call(a.url, 'GET', '/v1/tokens/self', other.token)).status).toBe(200);
    expect((await call(a.url, 'DELETE', `/v1/principals/${me.id}/tokens/${minesId}`, me.token)).status).toBe(
      204,
    );
  });

  it('rejects unknown fields, so nobody can set roles, owner, state or approvedBy by mass assignment', async () => {
    const attempts: Array<[string, string, string, unknown]> = [
      [
        'POST',
        '/v1/principals',
        admin.token,
        { kind: 'person', name: `m-${randomSuffix()}`, owner: users.viewer.id },
      ],
      [
        'POST',
        '/v1/principals',
        admin.token,
        { kind: 'person', name: `m-${randomSuffix()}`, id: users.viewer.id },
      ],
      [
        'POST',
        '/v1/principals',
        admin.token,
        { kind: 'person', name: `m-${randomSuffix()}`, state: 'approved' },
      ],
      [
        'POST',
        `/v1/principals/${users.requester.id}/tokens`,
        users.requester.token,
        { name: 'x', roles: ['admin'] },
      ],
      [
        'POST',
        `/v1/principals/${users.requester.id}/tokens`,
        users.requester.token,
        { name: 'x', principalId: admin.id },
      ],
      [
        'POST',
        `/v1/principals/${users.requester.id}/tokens`,
        users.requester.token,
        { name: 'x', approvedBy: admin.id },
      ],
      [
        'POST',
        `/v1/principals/${users.requester.id}/tokens`,
        users.requester.token,
        { name: 'x', expiresAt: '2999-01-01T00:00:00Z' },
      ],
    ];
    for (const [method, path, token, body] of attempts) {
      const res = await call(a.url, method, path, token, body);
      expect([path, body, res.status]).toEqual([path, body, 400]);
    }
    const self = await call(a.url, 'GET', '/v1/tokens/self', users.requester.token);
    expect((self.body as { principal: { roles: string[] } }).principal.roles).toEqual(['requester']);
  });

  it('expires a token on time', async () => {
    const res = await call(a.url, 'POST', `/v1/principals/${users.viewer.id}/tokens`, users.viewer.token, {
      name: 'short',
      expiresIn: '2s',
    });
    const token = (res.body as { token: string }).token;
    expect((await call(a.url, 'GET', '/v1/tokens/self', token)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2_200));
    expect((await call(a.url, 'GET', '/v1/tokens/self', token)).status).toBe(401);
    expect((await call(b.url, 'GET', '/v1/tokens/self', token)).status).toBe(401);
  });

  it('revokes at once on both processes, although both had the token cached', async () => {
    const who = await principal(`revokee-${randomSuffix()}`, ['operator']);
    const self = await call(a.url, 'GET', '/v1/tokens/self', who.token);
    const tokenId = (self.body as { token: { id: string } }).token.id;
    for (let i = 0; i < 3; i += 1) {
      expect((await call(a.url, 'GET', '/v1/tokens/self', who.token)).status).toBe(200);
      expect((await call(b.url, 'GET', '/v1/tokens/self', who.token)).status).toBe(200);
    }
    expect(
      (await call(b.url, 'DELETE', `/v1/principals/${who.id}/tokens/${tokenId}`, admin.token)).status,
    ).toBe(204);
    expect((await call(a.url, 'GET', '/v1/tokens/self', who.token)).status).toBe(401);
    expect((await call(b.url, 'GET', '/v1/tokens/self', who.token)).status).toBe(401);
  });

  it('never returns a secret after creation, nor puts one in logs, error bodies or the audit', async () => {
    const list = await call(a.url, 'GET', `/v1/principals/${users.operator.id}/tokens`, admin.token);
    const text = JSON.stringify(list.body);
    expect(text).not.toMatch(/secret|scrypt|norm_[0-9a-f]{12}_/i);
    const audit = await call(a.url, 'GET', '/v1/audit?limit=200', admin.token);
    const auditText = JSON.stringify(audit.body);
    for (const who of Object.values(users)) {
      expect(auditText).not.toContain(who.token);
      expect(a.output() + b.output()).not.toContain(who.token);
    }
    expect(auditText).not.toContain('scrypt$');
    const bad = await call(a.url, 'GET', '/v1/tokens/self', `${users.viewer.token}x`);
    expect(bad.status).toBe(401);
    expect(JSON.stringify(bad.body)).not.toContain(users.viewer.token);
  });

  it('filters and pages the audit, and records who, what and the request id', async () => {
    const created = await call(a.url, 'POST', '/v1/principals', admin.token, {
      kind: 'service',
      name: `audited-${randomSuffix()}`,
      groups: ['network-team'],
    });
    const id = (created.body as { id: string }).id;
    const q = `/v1/audit?objectType=principal&objectId=${id}`;
    const events = await call(a.url, 'GET', q, users.operator.token);
    const items = (events.body as { items: Array<Record<string, unknown>> }).items;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ actor: admin.id, action: 'principal.create', objectId: id });
    expect(items[0]!.requestId).toEqual(expect.any(String));
    const page = await call(a.url, 'GET', `/v1/audit?actor=${admin.id}&limit=3`, admin.token);
    const cursor = (page.body as { nextCursor: string }).nextCursor;
    const next = await call(
      a.url,
      'GET',
      `/v1/audit?actor=${admin.id}&limit=3&cursor=${cursor}`,
      admin.token,
    );
    expect((next.body as { items: unknown[] }).items).toHaveLength(3);
    expect((await call(a.url, 'GET', '/v1/audit?limit=500', admin.token)).status).toBe(400);
  });

  it('declares the bearer scheme and every route’s permission in OpenAPI', async () => {
    const doc = (await call(a.url, 'GET', '/openapi.json')).body as {
      components: { securitySchemes: Record<string, { scheme?: string; type: string }> };
      paths: Record<string, Record<string, { 'x-norm-permission'?: string; security?: unknown[] }>>;
    };
    expect(Object.values(doc.components.securitySchemes).some((s) => s.scheme === 'bearer')).toBe(true);
    const ours = Object.entries(doc.paths).filter(([p]) => /^\/v1\/(principals|tokens|audit)/.test(p));
    expect(ours.length).toBeGreaterThanOrEqual(6);
    for (const [path, ops] of ours) {
      for (const [method, op] of Object.entries(ops)) {
        expect([path, method, op['x-norm-permission']]).toEqual([
          path,
          method,
          expect.stringMatching(/^[a-z-]+:[a-z-]+$/),
        ]);
        expect(op.security).toBeDefined();
      }
    }
  });

  it('detects an edited row, a deleted newest row and a deleted middle row through GET /v1/audit/verify', async () => {
    expect((await call(a.url, 'GET', '/v1/audit/verify', admin.token)).body).toMatchObject({ ok: true });
    const pg = new Client({ connectionString: dbUrl });
    await pg.connect();
    try {
      const { rows } = await pg.query<{ seq: string; actor: string }>(
        `SELECT seq, actor FROM audit_events ORDER BY seq OFFSET 3 LIMIT 2`,
      );
      await pg.query(`UPDATE audit_events SET actor = 'someone-else' WHERE seq = $1`, [rows[0]!.seq]);
      const edited = await call(b.url, 'GET', '/v1/audit/verify', admin.token);
      expect(edited.body).toMatchObject({
        ok: false,
        firstBroken: { seq: rows[0]!.seq, problem: 'hash-mismatch' },
      });
      await pg.query(`UPDATE audit_events SET actor = $2 WHERE seq = $1`, [rows[0]!.seq, rows[0]!.actor]);

      // The newest row deleted: every remaining link holds, only the head shows the loss.
      await pg.query(`CREATE TEMP TABLE newest AS SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1`);
      const { rows: top } = await pg.query<{ seq: string }>(`SELECT seq FROM newest`);
      await pg.query(`DELETE FROM audit_events WHERE seq = $1`, [top[0]!.seq]);
      const truncated = await call(b.url, 'GET', '/v1/audit/verify', admin.token);
      expect(truncated.body).toMatchObject({
        ok: false,
        firstBroken: { seq: top[0]!.seq, problem: 'truncated' },
      });
      await pg.query(`INSERT INTO audit_events SELECT * FROM newest`);
      expect((await call(a.url, 'GET', '/v1/audit/verify', admin.token)).body).toMatchObject({ ok: true });

      await pg.query(`DELETE FROM audit_events WHERE seq = $1`, [rows[0]!.seq]);
      const deleted = await call(a.url, 'GET', '/v1/audit/verify', admin.token);
      expect(deleted.body).toMatchObject({
        ok: false,
        firstBroken: { seq: rows[1]!.seq, problem: 'prev-hash-mismatch' },
      });
    } finally {
      await pg.end();
    }
  });
});

describe('rate limits across two API processes sharing Redis', () => {
  const prefix = useRedisPrefix();
  let dropDb: () => Promise<void>;
  let a: ApiProcess;
  let b: ApiProcess;
  let token: string;

  beforeAll(async () => {
    const db = await createMigratedDatabase();
    dropDb = db.drop;
    const env = {
      DATABASE_URL: db.url,
      NORM_REDIS_PREFIX: prefix,
      NORM_RATE_LIMIT_PER_TOKEN: '10',
      NORM_RATE_LIMIT_PER_IP: '1000',
      NORM_AUTH_FAILURE_LIMIT: '4',
    };
    a = await startApi(env);
    b = await startApi(env);
    token = readFileSync(join(a.stateDir, 'admin-token'), 'utf8').trim();
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await dropDb?.();
  });

  it('shares one per-token budget between the processes, then answers 429 with Retry-After', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i += 1)
      statuses.push((await call(i % 2 ? b.url : a.url, 'GET', '/v1/tokens/self', token)).status);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(200));
    expect(statuses.slice(10)).toEqual([429, 429]);
    const refused = await call(b.url, 'GET', '/v1/tokens/self', token);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // health probes are public and never limited
    expect((await call(a.url, 'GET', '/healthz')).status).toBe(200);
  });

  it('limits failed authentication harder, per IP, across both processes', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      statuses.push(
        (await call(i % 2 ? b.url : a.url, 'GET', '/v1/audit', `norm_${'0'.repeat(12)}_${'B'.repeat(43)}`))
          .status,
      );
    }
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
  });
});
