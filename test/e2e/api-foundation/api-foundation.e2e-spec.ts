import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startApp } from '../../harness/app-process';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { type ApiUnderTest, startApi } from './api-under-test';

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown>; requestId: string };
}

interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, unknown>>;
  components: {
    schemas?: Record<string, unknown>;
    securitySchemes?: Record<string, Record<string, unknown>>;
  };
}

/** Every `$ref` in the document, so a dangling one fails the test instead of the UI. */
function refsOf(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refsOf(v, out);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refsOf(v, out);
    }
  }
  return out;
}

describe('api process', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let api: ApiUnderTest;

  beforeAll(async () => {
    api = await startApi({ DATABASE_URL: db.url, REDIS_URL, NORM_REDIS_PREFIX: prefix });
  });
  afterAll(async () => {
    await api?.process.stop();
  });

  it('answers /healthz without touching dependencies', async () => {
    const res = await api.get('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('answers /readyz with each dependency up', async () => {
    const res = await api.get('/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: 'ok',
      details: { postgres: { status: 'up' }, redis: { status: 'up' } },
    });
  });

  it('serves a consistent OpenAPI document with the bearer scheme', async () => {
    const res = await api.get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const doc = (await res.json()) as OpenApiDoc;
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: 'Norm API', version: expect.any(String) as string });
    expect(doc.components.securitySchemes?.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/healthz', '/readyz']));
    expect(doc.components.schemas).toHaveProperty('ErrorResponseDto');
    for (const ref of refsOf(doc)) {
      const name = ref.replace('#/components/schemas/', '');
      expect(doc.components.schemas, ref).toHaveProperty(name);
    }
  });

  it('serves Swagger UI at /docs, assets included', async () => {
    const page = await api.get('/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('swagger-ui');
    const asset = await api.get('/docs/swagger-ui-bundle.js');
    expect(asset.status).toBe(200);
  });

  it('echoes a safe x-request-id and logs it on the request line', async () => {
    const requestId = `e2e-${randomUUID()}`;
    const res = await api.get('/v1/no-such-route', { 'x-request-id': requestId });
    expect(res.headers.get('x-request-id')).toBe(requestId);
    const line = await api.process.waitForLine(
      (l) => l.requestId === requestId && l.msg === 'request completed',
    );
    expect(line).toMatchObject({
      level: 'warn',
      app: 'api',
      req: { method: 'GET' },
      res: { statusCode: 404 },
    });
  });

  it('generates a request id when none (or an unsafe one) is sent, and logs that one', async () => {
    const res = await api.get('/v1/no-such-route', { 'x-request-id': 'has spaces' });
    const requestId = res.headers.get('x-request-id') ?? '';
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await res.json()) as ErrorBody).error.requestId).toBe(requestId);
    await api.process.waitForLine((l) => l.requestId === requestId);
  });

  it('answers an unknown route with 404 in the error shape', async () => {
    const res = await api.get('/v1/no-such-route');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = (await res.json()) as ErrorBody;
    expect(body).toEqual({
      error: {
        code: 'NotFound',
        message: expect.any(String) as string,
        requestId: res.headers.get('x-request-id'),
      },
    });
  });

  it('answers a malformed JSON body with 400 in the error shape', async () => {
    const res = await fetch(`${api.baseUrl}/v1/no-such-route`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name": ',
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error).toMatchObject({ code: 'BadRequest', requestId: res.headers.get('x-request-id') });
  });

  it('writes only JSON lines to stdout, none of them carrying a bearer token', async () => {
    await fetch(`${api.baseUrl}/v1/no-such-route`, { headers: { authorization: 'Bearer e2e-secret-token' } });
    await expectEventually(() =>
      expect(api.process.lines.filter((l) => l.msg === 'request completed').length).toBeGreaterThan(5),
    );
    expect(api.process.lines.filter((l) => 'text' in l)).toEqual([]);
    expect(api.process.stderr.join('')).toBe('');
    expect(JSON.stringify(api.process.lines)).not.toContain('e2e-secret-token');
    for (const line of api.process.lines) expect(line).toHaveProperty('level');
  });

  // Last: it stops the process the other tests share.
  it('shuts down on SIGTERM, closing its connections', async () => {
    const { code, signal } = await api.process.stop('SIGTERM');
    expect(code === 0 || signal === 'SIGTERM').toBe(true);
    expect(api.process.lines.some((l) => l.msg === 'connections closed' && l.signal === 'SIGTERM')).toBe(
      true,
    );
  });
});

describe('api configuration', () => {
  it('refuses to start with ONE message naming every bad variable', async () => {
    const api = startApp('api', { NORM_API_PORT: 'abc', NORM_SHUTDOWN_GRACE: '10' });
    const { code } = await api.exited;
    expect(code).not.toBe(0);
    const stderr = api.stderr.join('').trim();
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stderr).toContain('NORM_API_PORT');
    expect(stderr).toContain('NORM_SHUTDOWN_GRACE');
    expect(api.lines).toEqual([]);
  });

  it('fails the boot visibly, in JSON, when Postgres is unreachable', async () => {
    const api = startApp('api', {
      NORM_API_PORT: String(await freePort()),
      NORM_STATE_DIR: mkdtempSync(join(tmpdir(), 'norm-api-e2e-')),
      // Port 1 on loopback: nothing listens, the connection is refused at once.
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/norm',
    });
    const { code } = await api.exited;
    expect(code).toBe(1);
    expect(api.lines.filter((l) => 'text' in l)).toEqual([]);
    expect(api.lines).toContainEqual(
      expect.objectContaining({
        level: 'fatal',
        msg: 'api failed to start',
        err: expect.objectContaining({
          message: expect.stringContaining('postgres unreachable') as string,
        }) as object,
      }),
    );
  });
});
