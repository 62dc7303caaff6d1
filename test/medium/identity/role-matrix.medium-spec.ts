import { randomUUID } from 'node:crypto';
import { type Permission, ROLE_GRANTS, ROLES, type Role } from '@norm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import {
  concreteUrl,
  type Fixtures,
  makeFixtures,
  type RegisteredRoute,
  type SecuredApi,
  startSecuredApi,
} from './secured-api';

const key = (r: { method: string; url: string }): string => `${r.method} ${r.url}`;

/** Query strings a GET route needs to answer 200 at all. */
const QUERIES: Record<string, string> = {
  'GET /v1/placement/preview': '?memoryMb=512&vcpus=1&diskGb=1',
};

/** Which fixture each path parameter names, by the route's resource. */
function fixtureValues(route: RegisteredRoute, f: Fixtures): Record<string, string> {
  const resource = route.url.split('/')[2];
  const ids: Record<string, string> = {
    hosts: f.hostId,
    images: f.imageId,
    networks: f.networkId,
    'vm-requests': f.requestId,
    instances: f.instanceId,
    operations: f.operationId,
    principals: f.principalId,
  };
  return { ...(resource && ids[resource] ? { id: ids[resource] } : {}), tokenId: f.tokenId };
}

/**
 * Each role against every route, with the expectation computed from ROLE_GRANTS
 * (libs/core/src/identity/permissions.ts) and the route's declared permission:
 *   - no grant: 403 from the guard, naming the permission;
 *   - reads (GET) of real objects: 200 with an `any` grant; with an `own` grant 200 for lists
 *     (filtered to the caller) and 404 for an object of someone else's;
 *   - writes, aimed at ids that do not exist so nothing real changes: the guard lets them
 *     through (a 404 or 400 from the route itself, never 401/403/5xx).
 * The route list is Fastify's, so a new route joins the matrix by itself.
 */
describe('role matrix: each role against each route', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let api: SecuredApi;
  let fixtures: Fixtures;
  const tokens = {} as Record<Role, string>;

  beforeAll(async () => {
    api = await startSecuredApi(db.url, prefix);
    for (const role of ROLES) tokens[role] = (await api.principal(`matrix-${role}`, [role])).token;
    // The objects belong to a requester who is none of the callers.
    fixtures = await makeFixtures(api, db.dataSource, await api.principal('matrix-owner', ['requester']));
  });
  afterAll(async () => {
    await api?.close();
  });

  function expected(route: RegisteredRoute, role: Role): string {
    const scope = ROLE_GRANTS[role][route.permission as Permission];
    if (!scope) return `403 ${route.permission}`;
    if (route.method !== 'GET') return 'passes the guard';
    if (scope === 'own' && route.params.length > 0) return '404';
    return '200';
  }

  async function actual(route: RegisteredRoute, role: Role): Promise<string> {
    const read = route.method === 'GET';
    const url = read
      ? `${concreteUrl(route, fixtureValues(route, fixtures))}${QUERIES[key(route)] ?? ''}`
      : concreteUrl(route, { id: randomUUID() });
    const res = await api.call(route.method, url, tokens[role], route.hasBody ? {} : undefined);
    const error = res.body.error as { code?: string; details?: { permission?: string } } | undefined;
    if (res.status === 403 && error?.details?.permission) return `403 ${error.details.permission}`;
    if (read) return String(res.status);
    return res.status === 401 || res.status === 403 || res.status >= 500
      ? `${res.status} ${JSON.stringify(res.body)}`
      : 'passes the guard';
  }

  it('covers the route classes of the brief, and every declared permission is a known one', () => {
    const resources = new Set(api.routes.map((r) => r.url.split('/')[2]));
    for (const r of [
      'hosts',
      'images',
      'networks',
      'placement',
      'vm-requests',
      'instances',
      'operations',
      'lifecycle',
      'deregistrations',
      'inventory',
      'approvals',
      'approval-policy',
      'principals',
      'tokens',
      'audit',
      'integrations',
    ]) {
      expect([r, resources.has(r)]).toEqual([r, true]);
    }
  });

  it.each(ROLES)('%s: allowed and refused exactly as ROLE_GRANTS says', async (role) => {
    const routes = api.routes.filter((r) => r.permission && r.permission !== 'public');
    const got: string[] = [];
    const want: string[] = [];
    for (const route of routes) {
      got.push(`${key(route)} -> ${await actual(route, role)}`);
      want.push(`${key(route)} -> ${expected(route, role)}`);
    }
    expect(got).toEqual(want);
  });
});
