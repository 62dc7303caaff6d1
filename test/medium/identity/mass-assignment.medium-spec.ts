import { IdentityService } from '@norm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { aPrincipal } from '../vm-requests/builders';
import {
  concreteUrl,
  type Fixtures,
  makeFixtures,
  type Reply,
  type SecuredApi,
  startSecuredApi,
  tableCounts,
} from './secured-api';

const key = (r: { method: string; url: string }): string => `${r.method} ${r.url}`;

/** Fields a caller must never set: the server owns them. */
const SERVER_OWNED = ['state', 'ownerId', 'owner', 'approvedBy', 'version', 'id', 'createdAt', 'createdBy'];

/**
 * Outside systems' formats (Alertmanager, Sensu): extra fields are theirs, allowed and ignored
 * (never stored), so unknown fields there are not a mass-assignment channel.
 */
const LOOSE = new Set(['POST /v1/integrations/alertmanager', 'POST /v1/integrations/sensu']);

const issuePaths = (res: Reply): string[] =>
  (
    (res.body.error as { details?: { issues?: Array<{ path: string }> } } | undefined)?.details?.issues ?? []
  ).map((i) => i.path);

describe('mass assignment: server-owned fields in a body are a 400 naming them, and nothing is recorded', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let api: SecuredApi;
  let f: Fixtures;
  let requester: { id: string; token: string };
  let instanceToken: string;

  const requestBody = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    name: `ma-${Math.random().toString(36).slice(2, 8)}`,
    vcpus: 1,
    memoryMb: 512,
    diskGb: 1,
    imageId: f.imageId,
    networkId: f.networkId,
    lifecycleClass: 'cattle',
    ...over,
  });

  beforeAll(async () => {
    api = await startSecuredApi(db.url, prefix);
    requester = await api.principal('ma-requester', ['requester']);
    f = await makeFixtures(api, db.dataSource, requester);
    instanceToken = (
      await api.app.get(IdentityService).createInstanceToken(aPrincipal(['admin']), f.instanceId)
    ).token;
  });
  afterAll(async () => {
    await api?.close();
  });

  it('every route that takes a body refuses every server-owned field, by name', async () => {
    const routes = api.routes.filter((r) => r.hasBody && !LOOSE.has(key(r)));
    expect(routes.length).toBeGreaterThanOrEqual(12);
    const before = await tableCounts(db.dataSource);
    const got: string[] = [];
    const want: string[] = [];
    const values: Record<string, string> = {
      id: f.requestId,
      tokenId: f.tokenId,
      requestId: f.requestId,
    };
    for (const route of routes) {
      const resource = route.url.split('/')[2];
      const id =
        resource === 'hosts'
          ? f.hostId
          : resource === 'images'
            ? f.imageId
            : resource === 'principals'
              ? f.principalId
              : resource === 'instances'
                ? f.instanceId
                : f.requestId;
      // The only credential each route accepts, so the refusal is the body's, not the guard's.
      const token = route.permission === 'instances:heartbeat' ? instanceToken : api.adminToken;
      const body = Object.fromEntries(SERVER_OWNED.map((k) => [k, k === 'version' ? 7 : 'x']));
      const res = await api.call(route.method, concreteUrl(route, { ...values, id }), token, body);
      const named = SERVER_OWNED.filter((k) => issuePaths(res).includes(k));
      got.push(`${key(route)} -> ${res.status} naming ${named.join(',')}`);
      want.push(`${key(route)} -> 400 naming ${SERVER_OWNED.join(',')}`);
    }
    expect(got).toEqual(want);
    expect(await tableCounts(db.dataSource)).toEqual(before);
  });

  it.each([
    'state',
    'ownerId',
    'owner',
    'approvedBy',
    'version',
    'id',
    'hostId',
    'approvalPlan',
    'createdAt',
  ])('POST /v1/vm-requests: an otherwise valid body with %s is refused, naming it', async (field) => {
    const before = await tableCounts(db.dataSource);
    const value =
      field === 'version' ? 0 : field === 'approvalPlan' ? [] : field.endsWith('Id') ? f.hostId : 'approved';
    const res = await api.call('POST', '/v1/vm-requests', requester.token, requestBody({ [field]: value }));
    expect(res.status).toBe(400);
    expect(issuePaths(res)).toEqual([field]);
    expect(await tableCounts(db.dataSource)).toEqual(before);
  });

  it('refuses server-owned fields in otherwise valid bodies of the other create, patch and action routes', async () => {
    const cases: Array<[string, string, string, Record<string, unknown>, string]> = [
      [
        'POST',
        '/v1/principals',
        api.adminToken,
        { kind: 'person', name: 'ma-x', deletedAt: null },
        'deletedAt',
      ],
      ['POST', '/v1/principals', api.adminToken, { kind: 'person', name: 'ma-x', id: f.principalId }, 'id'],
      [
        'POST',
        `/v1/principals/${requester.id}/tokens`,
        requester.token,
        { name: 't', expiresAt: '2999-01-01T00:00:00Z' },
        'expiresAt',
      ],
      [
        'POST',
        `/v1/principals/${requester.id}/tokens`,
        requester.token,
        { name: 't', roles: ['admin'] },
        'roles',
      ],
      [
        'POST',
        `/v1/principals/${requester.id}/tokens`,
        requester.token,
        { name: 't', kind: 'instance' },
        'kind',
      ],
      // The pinned host key is set once, at registration; a patch must not swap it.
      [
        'PATCH',
        `/v1/hosts/${f.hostId}`,
        api.adminToken,
        { labels: { a: 'b' }, hostKeyFingerprint: 'SHA256:' + 'B'.repeat(43) },
        'hostKeyFingerprint',
      ],
      ['PATCH', `/v1/hosts/${f.hostId}`, api.adminToken, { labels: { a: 'b' }, status: 'online' }, 'status'],
      [
        'PATCH',
        `/v1/hosts/${f.hostId}`,
        api.adminToken,
        { limits: { dom0ReserveMb: 1, freeMemoryMb: 1 } },
        'limits.freeMemoryMb',
      ],
      [
        'POST',
        `/v1/hosts/${f.hostId}/actions/maintenance`,
        api.adminToken,
        { enabled: true, status: 'online' },
        'status',
      ],
      ['PATCH', `/v1/images/${f.imageId}`, api.adminToken, { osLabel: 'x', version: 9 }, 'version'],
      [
        'POST',
        `/v1/vm-requests/${f.requestId}/actions/cancel`,
        requester.token,
        { reason: 'x', state: 'cancelled' },
        'state',
      ],
      [
        'POST',
        `/v1/vm-requests/${f.requestId}/approvals`,
        api.adminToken,
        { step: 'quota', decision: 'approve', approvedBy: requester.id },
        'approvedBy',
      ],
      [
        'POST',
        `/v1/instances/${f.instanceId}/heartbeat`,
        instanceToken,
        { seq: 1, deadline: '2999-01-01T00:00:00Z' },
        'deadline',
      ],
    ];
    const before = await tableCounts(db.dataSource);
    for (const [method, url, token, body, field] of cases) {
      const res = await api.call(method, url, token, body);
      expect([method, url, res.status, issuePaths(res)]).toEqual([method, url, 400, [field]]);
    }
    expect(await tableCounts(db.dataSource)).toEqual(before);
    const [host] = await db.dataSource.query<Array<{ labels: unknown }>>(
      `SELECT labels FROM hosts WHERE id = $1`,
      [f.hostId],
    );
    expect(host!.labels).toEqual({});
  });

  it('accepts the same bodies without the extra field (the refusals above were the field’s)', async () => {
    expect((await api.call('POST', '/v1/vm-requests', requester.token, requestBody())).status).toBe(201);
    expect(
      (await api.call('PATCH', `/v1/hosts/${f.hostId}`, api.adminToken, { labels: { a: 'b' } })).status,
    ).toBe(200);
    expect(
      (await api.call('PATCH', `/v1/images/${f.imageId}`, api.adminToken, { osLabel: 'x' })).status,
    ).toBe(200);
    const self = await api.call('GET', '/v1/tokens/self', requester.token);
    expect((self.body.principal as { roles: string[] }).roles).toEqual(['requester']);
  });
});
