import { randomUUID } from 'node:crypto';
import { IdentityService, type Permission, ROLE_GRANTS } from '@norm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { aPrincipal } from '../vm-requests/builders';
import {
  concreteUrl,
  type Fixtures,
  makeFixtures,
  type RegisteredRoute,
  type SecuredApi,
  startSecuredApi,
  tableCounts,
} from './secured-api';

const key = (r: { method: string; url: string }): string => `${r.method} ${r.url}`;

/**
 * Every route with a path parameter names an object. Owned objects (a requester's requests,
 * instances, their operations, the principal itself and its tokens) must answer another
 * requester exactly as a missing id does; shared infrastructure has no owner. A new object
 * route fails the completeness check below until it is put in one of the two tables.
 */
const OWNED: Record<string, (f: Fixtures) => Record<string, string>> = {
  'GET /v1/vm-requests/:id': (f) => ({ id: f.requestId }),
  'POST /v1/vm-requests/:id/actions/cancel': (f) => ({ id: f.requestId }),
  'POST /v1/vm-requests/:id/approvals': (f) => ({ id: f.requestId }),
  'GET /v1/instances/:id': (f) => ({ id: f.instanceId }),
  'POST /v1/instances/:id/actions/:action': (f) => ({ id: f.instanceId, action: 'stop' }),
  'POST /v1/instances/:id/heartbeat': (f) => ({ id: f.instanceId }),
  'POST /v1/instances/:id/token': (f) => ({ id: f.instanceId }),
  'PATCH /v1/instances/:id': (f) => ({ id: f.instanceId }),
  'GET /v1/operations/:id': (f) => ({ id: f.operationId }),
  'GET /v1/principals/:id': (f) => ({ id: f.principalId }),
  'DELETE /v1/principals/:id': (f) => ({ id: f.principalId }),
  'POST /v1/principals/:id/tokens': (f) => ({ id: f.principalId }),
  'GET /v1/principals/:id/tokens': (f) => ({ id: f.principalId }),
  'DELETE /v1/principals/:id/tokens/:tokenId': (f) => ({ id: f.principalId, tokenId: f.tokenId }),
};

/** Objects nobody owns: a requester's access is decided by the permission alone. */
const SHARED: Record<string, (f: Fixtures) => Record<string, string>> = {
  'GET /v1/hosts/:id': (f) => ({ id: f.hostId }),
  'PATCH /v1/hosts/:id': (f) => ({ id: f.hostId }),
  'DELETE /v1/hosts/:id': (f) => ({ id: f.hostId }),
  'POST /v1/hosts/:id/actions/maintenance': (f) => ({ id: f.hostId }),
  'GET /v1/hosts/:id/drift': (f) => ({ id: f.hostId }),
  'GET /v1/images/:id': (f) => ({ id: f.imageId }),
  'PATCH /v1/images/:id': (f) => ({ id: f.imageId }),
  'DELETE /v1/images/:id': (f) => ({ id: f.imageId }),
  'GET /v1/networks/:id': (f) => ({ id: f.networkId }),
  'DELETE /v1/networks/:id': (f) => ({ id: f.networkId }),
  'POST /v1/deregistrations/:id/actions/retry': () => ({ id: randomUUID() }),
  'POST /v1/webhooks/deliveries/:id/actions/retry': () => ({ id: randomUUID() }),
  // Authenticated by HMAC, not by a principal (unauthenticated.medium-spec.ts).
  'POST /v1/approvals/callbacks/:requestId/:step': () => ({ requestId: randomUUID(), step: 'quota' }),
};

/** Valid bodies, so a refusal is about the object and not about the payload. */
const BODIES: Record<string, unknown> = {
  'POST /v1/vm-requests/:id/actions/cancel': { reason: 'probing' },
  'POST /v1/vm-requests/:id/approvals': { step: 'quota', decision: 'approve' },
  'POST /v1/instances/:id/heartbeat': {},
  'PATCH /v1/instances/:id': { heartbeatTimeout: '90s' },
  'POST /v1/principals/:id/tokens': { name: 'probe' },
  'PATCH /v1/hosts/:id': { labels: { probed: 'yes' } },
  'POST /v1/hosts/:id/actions/maintenance': { enabled: true },
  'PATCH /v1/images/:id': { osLabel: 'probed' },
};

interface Answer {
  status: number;
  code: string | undefined;
}

describe('object-level access: another requester is refused like a missing id (404, not 403)', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let api: SecuredApi;
  let fixtures: Fixtures;
  let owner: { id: string; token: string };
  let other: { id: string; token: string };
  let objectRoutes: RegisteredRoute[];

  const send = async (
    route: RegisteredRoute,
    values: Record<string, string>,
    token: string,
  ): Promise<Answer> => {
    const res = await api.call(
      route.method,
      concreteUrl(route, values),
      token,
      BODIES[key(route)] ?? (route.hasBody ? {} : undefined),
    );
    return { status: res.status, code: (res.body.error as { code?: string } | undefined)?.code };
  };
  const missing = (values: Record<string, string>): Record<string, string> =>
    Object.fromEntries(
      Object.entries(values).map(([k, v]) => [k, /^[0-9a-f-]{36}$/.test(v) ? randomUUID() : v]),
    );

  beforeAll(async () => {
    api = await startSecuredApi(db.url, prefix);
    owner = await api.principal('owner-requester', ['requester']);
    other = await api.principal('other-requester', ['requester']);
    fixtures = await makeFixtures(api, db.dataSource, owner);
    objectRoutes = api.routes.filter((r) => r.params.length > 0);
  });
  afterAll(async () => {
    await api?.close();
  });

  it('classifies every object route of the app as owned or shared', () => {
    const unclassified = objectRoutes.map(key).filter((k) => !(k in OWNED) && !(k in SHARED));
    expect(unclassified).toEqual([]);
    // Stale rows would hide a renamed route.
    const known = new Set(objectRoutes.map(key));
    expect([...Object.keys(OWNED), ...Object.keys(SHARED)].filter((k) => !known.has(k))).toEqual([]);
  });

  it('the owner reaches each of its objects (so the refusals below are about ownership)', async () => {
    for (const route of objectRoutes.filter((r) => r.method === 'GET' && key(r) in OWNED)) {
      const answer = await send(route, OWNED[key(route)]!(fixtures), owner.token);
      expect([key(route), answer.status]).toEqual([key(route), 200]);
    }
  });

  it('answers another requester on every owned route exactly as for an id that does not exist, and changes nothing', async () => {
    const before = await tableCounts(db.dataSource);
    const rows: string[] = [];
    const want: string[] = [];
    for (const route of objectRoutes.filter((r) => key(r) in OWNED)) {
      const values = OWNED[key(route)]!(fixtures);
      const theirs = await send(route, values, other.token);
      const ghost = await send(route, missing(values), other.token);
      rows.push(
        `${key(route)} -> ${theirs.status} ${theirs.code} | missing id: ${ghost.status} ${ghost.code}`,
      );
      // With an `own` grant the object is hidden (404); without the permission at all the
      // guard refuses before any lookup (403), for a real id and a missing one alike.
      const scope = ROLE_GRANTS.requester[route.permission as Permission];
      const expected = scope === 'own' ? '404 NotFound' : '403 Forbidden';
      want.push(`${key(route)} -> ${expected} | missing id: ${expected}`);
    }
    expect(rows).toEqual(want);
    expect(await tableCounts(db.dataSource)).toEqual(before);
    const [request] = await db.dataSource.query<Array<{ state: string }>>(
      `SELECT state FROM vm_requests WHERE id = $1`,
      [fixtures.requestId],
    );
    expect(request!.state).toBe('approved');
    expect((await api.call('GET', '/v1/tokens/self', owner.token)).status).toBe(200);
  });

  it('lists only the caller’s own objects, even when asked for another owner’s', async () => {
    for (const path of ['/v1/vm-requests', '/v1/instances']) {
      const mine = await api.call('GET', `${path}?owner=${owner.id}`, owner.token);
      expect((mine.body.items as unknown[]).length).toBeGreaterThan(0);
      const theirs = await api.call('GET', `${path}?owner=${owner.id}`, other.token);
      expect([path, theirs.status, theirs.body.items]).toEqual([path, 200, []]);
      const all = await api.call('GET', path, other.token);
      expect([path, all.body.items]).toEqual([path, []]);
    }
    const inventory = JSON.stringify((await api.call('GET', '/v1/inventory/ansible', other.token)).body);
    expect(inventory).not.toContain(fixtures.instanceId);
    const principals = await api.call('GET', '/v1/principals', other.token);
    expect((principals.body as unknown as Array<{ id: string }>).map((p) => p.id)).toEqual([other.id]);
  });

  it('an instance token reaches only its own instance’s heartbeat', async () => {
    const [inst] = await db.dataSource.query<Array<{ id: string }>>(
      `INSERT INTO "instances" ("vm_request_id", "name", "owner_id", "domain_name", "lifecycle_class", "state")
       SELECT id, 'beater', owner_id, 'beater', 'cattle', 'running' FROM vm_requests WHERE id = $1 RETURNING id`,
      [
        (
          await api.call('POST', '/v1/vm-requests', other.token, {
            name: 'beater',
            vcpus: 1,
            memoryMb: 512,
            diskGb: 1,
            imageId: fixtures.imageId,
            networkId: fixtures.networkId,
            lifecycleClass: 'cattle',
          })
        ).body.id,
      ],
    );
    const { token } = await api.app.get(IdentityService).createInstanceToken(aPrincipal(['admin']), inst!.id);
    const beat = (id: string) => api.call('POST', `/v1/instances/${id}/heartbeat`, token, {});
    expect((await beat(inst!.id)).status).toBe(202);
    const others = await beat(fixtures.instanceId);
    const ghost = await beat(randomUUID());
    expect([others.status, ghost.status]).toEqual([404, 404]);
    expect(others.body.error).toMatchObject({ code: 'NotFound' });
    // Good for nothing else, not even reading its own instance.
    expect((await api.call('GET', `/v1/instances/${inst!.id}`, token)).status).toBe(403);
    expect((await api.call('GET', '/v1/tokens/self', token)).status).toBe(403);
    // And an API token, even an admin's, is not an instance credential.
    expect((await api.call('POST', `/v1/instances/${inst!.id}/heartbeat`, api.adminToken, {})).status).toBe(
      403,
    );
  });
});
