import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callbackPayload, signPayload } from '@norm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import {
  concreteUrl,
  type RegisteredRoute,
  type SecuredApi,
  startSecuredApi,
  tableCounts,
} from './secured-api';

/**
 * The routes served without a bearer token, on purpose. Everything else in Fastify's route
 * table must answer 401 to a missing, malformed, unknown, forged, expired, revoked or orphaned
 * token, so a route added later is covered without touching this file, and a route that
 * starts answering without a token fails here until it is listed.
 */
const PUBLIC = new Set([
  'GET /healthz',
  'GET /readyz',
  'GET /openapi.json',
  'GET /docs',
  'GET /docs/*',
  // Authenticated by the webhook step's HMAC instead (checked below).
  'POST /v1/approvals/callbacks/:requestId/:step',
]);

const SECRET_ENV = 'NORM_TEST_UNAUTH_HOOK_SECRET';
const SECRET = 'unauthenticated-spec-secret';
const key = (r: { method: string; url: string }): string => `${r.method} ${r.url}`;

describe('every route refuses a call without a valid token (the real app, its own route table)', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let api: SecuredApi;
  let guarded: RegisteredRoute[];
  const bad: Record<string, string | undefined> = {};

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'norm-unauth-'));
    const policy = join(dir, 'policy.yaml');
    // A webhook step, so the callback route has a secret to refuse forgeries with.
    writeFileSync(
      policy,
      `steps:\n  - name: cmdb\n    kind: webhook\n    url: http://127.0.0.1:9/\n    secretEnv: ${SECRET_ENV}\n    onError: pending\n`,
    );
    process.env[SECRET_ENV] = SECRET;
    api = await startSecuredApi(db.url, prefix, { NORM_APPROVAL_POLICY: policy });
    guarded = api.routes.filter((r) => !PUBLIC.has(key(r)));

    const [, realPrefix] = /^norm_([0-9a-f]+)_/.exec(api.adminToken) ?? [];
    bad['no Authorization header'] = undefined;
    bad['garbage'] = 'hello';
    bad['unknown prefix'] = `norm_${'0'.repeat(12)}_${'A'.repeat(43)}`;
    bad['real prefix, forged secret'] = `norm_${realPrefix!}_${'A'.repeat(43)}`;

    // Each of these was a working admin token a moment ago (and sits in the token cache).
    const expiring = await api.principal('expiring-admin', ['admin']);
    const short = await api.call('POST', `/v1/principals/${expiring.id}/tokens`, api.adminToken, {
      name: 'short',
      expiresIn: '1s',
    });
    bad['expired'] = String(short.body.token);
    const revoked = await api.principal('revoked-admin', ['admin']);
    const orphan = await api.principal('deleted-admin', ['admin']);
    for (const token of [bad['expired'], revoked.token, orphan.token]) {
      expect((await api.call('GET', '/v1/tokens/self', token)).status).toBe(200);
    }
    const self = await api.call('GET', '/v1/tokens/self', revoked.token);
    const tokenId = String((self.body.token as { id: string }).id);
    expect(
      (await api.call('DELETE', `/v1/principals/${revoked.id}/tokens/${tokenId}`, api.adminToken)).status,
    ).toBe(204);
    bad['revoked'] = revoked.token;
    expect((await api.call('DELETE', `/v1/principals/${orphan.id}`, api.adminToken)).status).toBe(204);
    bad['principal deleted'] = orphan.token;
    await new Promise((r) => setTimeout(r, 1_100));
  });
  afterAll(async () => {
    delete process.env[SECRET_ENV];
    await api?.close();
  });

  it('reads the route table from Fastify, and it matches the OpenAPI document', async () => {
    // Enough routes that an empty or partial table cannot pass unnoticed.
    expect(guarded.length).toBeGreaterThanOrEqual(45);
    const fastify = api.app.getHttpAdapter().getInstance();
    for (const entry of PUBLIC) {
      const [method, url] = entry.split(' ') as [string, string];
      // Swagger registers its routes before the test's hook; ask Fastify directly.
      expect([entry, fastify.hasRoute({ method, url })]).toEqual([entry, true]);
    }
    const doc = (await api.call('GET', '/openapi.json')).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`),
    );
    const registered = api.routes.map(key).filter((k) => !k.startsWith('GET /docs'));
    expect([...documented].sort()).toEqual([...registered].sort());
    for (const r of guarded) {
      expect([key(r), r.permission]).toEqual([key(r), expect.stringMatching(/^[a-z-]+:[a-z-]+$/)]);
    }
  });

  it.each([
    'no Authorization header',
    'garbage',
    'unknown prefix',
    'real prefix, forged secret',
    'expired',
    'revoked',
    'principal deleted',
  ])('answers 401 on every guarded route: %s', async (name) => {
    const before = await tableCounts(db.dataSource);
    const token = bad[name];
    // All at once: concurrent checks of one token share a single scrypt, as in production.
    const answers = await Promise.all(
      guarded.map(async (route) => {
        const res = await api.call(route.method, concreteUrl(route), token, route.hasBody ? {} : undefined);
        const error = res.body.error as { code?: string; details?: unknown } | undefined;
        // The code only: why a token was refused is logged, never told to the caller.
        return `${key(route)} -> ${res.status} ${error?.code ?? ''}${error?.details ? ' +details' : ''}`;
      }),
    );
    expect(answers).toEqual(guarded.map((r) => `${key(r)} -> 401 Unauthenticated`));
    expect(await tableCounts(db.dataSource)).toEqual(before);
  });

  it('takes only the Bearer scheme: a valid token under another scheme is refused', async () => {
    const statuses = new Set<number>();
    for (const route of guarded) {
      const res = await api.app.inject({
        method: route.method as 'GET',
        url: concreteUrl(route),
        headers: { authorization: `Token ${api.adminToken}` },
      });
      statuses.add(res.statusCode);
    }
    expect([...statuses]).toEqual([401]);
  });

  it('serves the public routes without a token', async () => {
    expect((await api.call('GET', '/healthz')).status).toBe(200);
    expect((await api.call('GET', '/readyz')).status).toBe(200);
    expect((await api.call('GET', '/openapi.json')).status).toBe(200);
    expect((await api.call('GET', '/docs')).status).toBe(200);
  });

  it('refuses a webhook callback without, or with a wrong, signature, and a bearer token does not replace it', async () => {
    const requestId = '00000000-0000-4000-8000-000000000001';
    const url = `/v1/approvals/callbacks/${requestId}/cmdb`;
    const payload = { decision: 'approve' };
    const good = signPayload(SECRET, callbackPayload(requestId, 'cmdb', 'approve', undefined));
    const before = await tableCounts(db.dataSource);
    const attempts: Array<[string, Record<string, string>]> = [
      ['none', {}],
      ['bearer instead', { authorization: `Bearer ${api.adminToken}` }],
      [
        'wrong secret',
        {
          'x-norm-signature': signPayload(
            'not-the-secret',
            callbackPayload(requestId, 'cmdb', 'approve', undefined),
          ),
        },
      ],
      [
        'other decision',
        { 'x-norm-signature': signPayload(SECRET, callbackPayload(requestId, 'cmdb', 'reject', undefined)) },
      ],
      ['garbage', { 'x-norm-signature': 'sha256=00' }],
    ];
    for (const [name, headers] of attempts) {
      const res = await api.app.inject({ method: 'POST', url, headers, payload });
      expect([name, res.statusCode]).toEqual([name, 401]);
    }
    expect(await tableCounts(db.dataSource)).toEqual(before);
    // The right signature gets past authentication (to a 404: no such request), so the 401s above were the signature's.
    const signed = await api.app.inject({
      method: 'POST',
      url,
      headers: { 'x-norm-signature': good },
      payload,
    });
    expect(signed.statusCode).toBe(404);
  });
});
