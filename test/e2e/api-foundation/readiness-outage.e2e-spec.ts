import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_URL, REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { TcpProxy } from '../../harness/tcp-proxy';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { type ApiUnderTest, startApi } from './api-under-test';

interface Readiness {
  status: number;
  body: {
    status?: string;
    details?: Record<string, { status: string }>;
    error?: { code: string; details?: Record<string, { status: string }> };
  };
}

function upstreamOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/**
 * Postgres and Redis are shared by every test, so they are never stopped: the api reaches
 * them through proxies whose link the test cuts and restores.
 */
describe('readiness through a dependency outage', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let pg: TcpProxy;
  let redis: TcpProxy;
  let api: ApiUnderTest;

  async function readiness(): Promise<Readiness> {
    const res = await api.get('/readyz');
    return { status: res.status, body: (await res.json()) as Readiness['body'] };
  }

  const eventually = { timeoutMs: 20_000, intervalMs: 250 };

  beforeAll(async () => {
    pg = await TcpProxy.start(upstreamOf(DATABASE_URL));
    redis = await TcpProxy.start(upstreamOf(REDIS_URL));
    api = await startApi({
      DATABASE_URL: pg.urlFor(db.url),
      REDIS_URL: redis.urlFor(REDIS_URL),
      NORM_REDIS_PREFIX: prefix,
    });
  });
  afterAll(async () => {
    await api?.process.stop();
    await pg?.close();
    await redis?.close();
  });

  it('is ready while both links are up', async () => {
    expect(await readiness()).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(pg.connections).toBeGreaterThan(0);
    expect(redis.connections).toBeGreaterThan(0);
  });

  it('goes 503 naming Postgres when Postgres is cut, and 200 again when it returns', async () => {
    pg.cut();
    const down = await expectEventually(async () => {
      const r = await readiness();
      expect(r.status).toBe(503);
      return r;
    }, eventually);
    expect(down.body.error).toMatchObject({
      code: 'DependencyUnavailable',
      details: { postgres: { status: 'down' }, redis: { status: 'up' } },
    });
    // Liveness does not depend on Postgres: restarting the api would not bring it back.
    expect((await api.get('/healthz')).status).toBe(200);

    pg.restore();
    await expectEventually(async () => expect((await readiness()).status).toBe(200), eventually);
  });

  it('goes 503 naming Redis when Redis is cut, and 200 again when it returns', async () => {
    redis.cut();
    const down = await expectEventually(async () => {
      const r = await readiness();
      expect(r.status).toBe(503);
      return r;
    }, eventually);
    expect(down.body.error).toMatchObject({
      code: 'DependencyUnavailable',
      details: { postgres: { status: 'up' }, redis: { status: 'down' } },
    });
    expect((await api.get('/healthz')).status).toBe(200);

    redis.restore();
    await expectEventually(async () => expect((await readiness()).status).toBe(200), eventually);
  });

  it('answers /readyz promptly even while a dependency is down', async () => {
    pg.cut();
    redis.cut();
    try {
      const started = Date.now();
      const r = await readiness();
      expect(r.status).toBe(503);
      // Each probe is capped at 1 s and they run in parallel.
      expect(Date.now() - started).toBeLessThan(2_500);
    } finally {
      pg.restore();
      redis.restore();
    }
    await expectEventually(async () => expect((await readiness()).status).toBe(200), eventually);
  });

  it('survived the outages: still one process, logging the transitions', () => {
    expect(api.process.child.exitCode).toBeNull();
    // The identity module's own auto-pipelining connection has no 'error' listener yet, so
    // ioredis prints its resets; it should use createRedisClient from @norm/platform.
    const stderr = api.process.stderr
      .join('')
      .split('\n')
      .filter(
        (l) => l !== '' && !l.startsWith('[ioredis] Unhandled error event') && !l.startsWith('    at '),
      );
    expect(stderr).toEqual([]);
    expect(api.process.lines.filter((l) => 'text' in l)).toEqual([]);
    expect(api.process.lines.some((l) => l.msg === 'redis connection lost')).toBe(true);
    expect(api.process.lines.some((l) => l.msg === 'redis connection restored')).toBe(true);
  });
});
