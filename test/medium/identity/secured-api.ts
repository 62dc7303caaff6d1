import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig, type Role } from '@norm/core';
import { type DataSource } from 'typeorm';
import { createApiApp } from '../../../apps/api/src/api-app';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { aCatalogue, aHostRow } from '../vm-requests/builders';

/** One route as Fastify registered it, with the permission its OpenAPI operation declares. */
export interface RegisteredRoute {
  method: string;
  /** Fastify's pattern, e.g. `/v1/instances/:id/actions/:action`. */
  url: string;
  /** `x-norm-permission` of the matching OpenAPI operation; undefined when the document lacks it. */
  permission: string | undefined;
  /** Whether the OpenAPI operation declares a request body. */
  hasBody: boolean;
  /** Names of the path parameters, in order. */
  params: string[];
}

export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

export interface SecuredApi {
  app: NestFastifyApplication;
  adminToken: string;
  /** Every route of the real app, from Fastify's own registration (onRoute), HEAD mirrors left out. */
  routes: RegisteredRoute[];
  call(method: string, url: string, token?: string, payload?: unknown): Promise<Reply>;
  /** A principal with these roles and groups, and an API token for it. */
  principal(name: string, roles: Role[], groups?: string[]): Promise<{ id: string; token: string }>;
  close(): Promise<void>;
}

interface OpenApiDoc {
  paths: Record<string, Record<string, { 'x-norm-permission'?: string; requestBody?: unknown }>>;
}

/**
 * Boots the real API in-process (createApiApp, as main.ts does) on this file's database and
 * Redis prefix, and records every route Fastify registers. Nest registers controller routes
 * in `init()`, so a hook added before it sees all of them; Swagger's routes are registered
 * earlier by setupOpenApi, so they are read from the document path instead.
 */
export async function startSecuredApi(
  databaseUrl: string,
  redisPrefix: string,
  env: Record<string, string> = {},
): Promise<SecuredApi> {
  const stateDir = mkdtempSync(join(tmpdir(), 'norm-secured-'));
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    NORM_REDIS_PREFIX: redisPrefix,
    NORM_STATE_DIR: stateDir,
    NORM_LOG_LEVEL: 'silent',
    // These tests make hundreds of refused calls from one address on purpose.
    NORM_AUTH_FAILURE_LIMIT: '1000000',
    NORM_RATE_LIMIT_PER_IP: '1000000',
    NORM_RATE_LIMIT_PER_TOKEN: '1000000',
    ...env,
  });
  const app = await createApiApp({ config });
  const seen: Array<{ method: string; url: string }> = [];
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) seen.push({ method, url: route.url ?? route.path });
    });
  await app.init();
  const adminToken = await expectEventually(() => readFileSync(join(stateDir, 'admin-token'), 'utf8').trim());

  const call = async (method: string, url: string, token?: string, payload?: unknown): Promise<Reply> => {
    const res = await app.inject({
      method: method as 'GET',
      url,
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
    let body: Record<string, unknown> = {};
    try {
      body = res.json<Record<string, unknown>>();
    } catch {
      // not JSON (Swagger UI's HTML, an empty 204)
    }
    return { status: res.statusCode, body };
  };

  const doc = (await call('GET', '/openapi.json')).body as unknown as OpenApiDoc;
  const routes = seen
    .filter((r) => r.method !== 'HEAD')
    .map((r): RegisteredRoute => {
      const op = doc.paths[r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]?.[r.method.toLowerCase()];
      return {
        ...r,
        permission: op?.['x-norm-permission'],
        hasBody: op?.requestBody !== undefined,
        params: [...r.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!),
      };
    });

  const principal = async (
    name: string,
    roles: Role[],
    groups: string[] = [],
  ): Promise<{ id: string; token: string }> => {
    const p = await call('POST', '/v1/principals', adminToken, { kind: 'person', name, roles, groups });
    if (p.status !== 201) throw new Error(`creating ${name}: ${p.status} ${JSON.stringify(p.body)}`);
    const t = await call('POST', `/v1/principals/${String(p.body.id)}/tokens`, adminToken, { name: 'test' });
    if (t.status !== 201) throw new Error(`token for ${name}: ${t.status} ${JSON.stringify(t.body)}`);
    return { id: String(p.body.id), token: String(t.body.token) };
  };

  return { app, adminToken, routes, call, principal, close: () => app.close() };
}

/** Sample values for path parameters: a fresh uuid for ids, a valid word where the route wants one. */
const PARAM_SAMPLES: Record<string, string> = { action: 'stop', step: 'quota' };

/** A concrete URL for a route pattern; `values` wins over the samples. */
export function concreteUrl(route: RegisteredRoute, values: Record<string, string> = {}): string {
  return route.url
    .replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => values[name] ?? PARAM_SAMPLES[name] ?? randomUUID())
    .replace(/\*$/, 'index.html');
}

/** Row counts of every table: a refused call must leave all of them as they were. */
export async function tableCounts(ds: DataSource): Promise<Record<string, number>> {
  const tables = await ds.query<Array<{ name: string }>>(
    `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY 1`,
  );
  const out: Record<string, number> = {};
  for (const { name } of tables) {
    out[name] = (await ds.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM "${name}"`))[0]!.n;
  }
  return out;
}

/** Objects of every kind a route can name, the owned ones belonging to `owner`. */
export interface Fixtures {
  hostId: string;
  imageId: string;
  networkId: string;
  /** `owner`'s VM request, approved at once (no worker runs, so it stays there). */
  requestId: string;
  /** `owner`'s running instance, and the operation `owner` started on it. */
  instanceId: string;
  operationId: string;
  /** `owner`'s principal id and the id of its token. */
  principalId: string;
  tokenId: string;
}

/**
 * Real objects through the real routes where a route exists (request, operation), rows
 * where only the worker would create them (the instance).
 */
export async function makeFixtures(
  api: SecuredApi,
  ds: DataSource,
  owner: { id: string; token: string },
): Promise<Fixtures> {
  const host = await aHostRow(ds);
  const cat = await aCatalogue(ds);
  const created = await api.call('POST', '/v1/vm-requests', owner.token, {
    name: `owned-${randomUUID().slice(0, 8)}`,
    vcpus: 1,
    memoryMb: 512,
    diskGb: 1,
    imageId: cat.image.id,
    networkId: cat.network.id,
    lifecycleClass: 'cattle',
  });
  if (created.status !== 201) throw new Error(`request: ${created.status} ${JSON.stringify(created.body)}`);
  const requestId = String(created.body.id);
  const [instance] = await ds.query<Array<{ id: string }>>(
    `INSERT INTO "instances" ("vm_request_id", "name", "owner_id", "host_id", "domain_name", "lifecycle_class", "state")
     VALUES ($1, $2, $3, $4, $2, 'cattle', 'running') RETURNING "id"`,
    [requestId, `inst-${randomUUID().slice(0, 8)}`, owner.id, host.id],
  );
  const op = await api.call('POST', `/v1/instances/${instance!.id}/actions/reboot`, owner.token);
  if (op.status !== 202) throw new Error(`operation: ${op.status} ${JSON.stringify(op.body)}`);
  const self = await api.call('GET', '/v1/tokens/self', owner.token);
  return {
    hostId: host.id,
    imageId: cat.image.id,
    networkId: cat.network.id,
    requestId,
    instanceId: instance!.id,
    operationId: String(op.body.id),
    principalId: owner.id,
    tokenId: String((self.body.token as { id: string }).id),
  };
}
