import { AsyncLocalStorage } from 'node:async_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { type SecuredApi, startSecuredApi } from './secured-api';

/**
 * The API serves requests without entering any AsyncLocalStorage: on Node 20 one context
 * entered anywhere turns on promise hooks for every promise in the process, which cost a
 * third of the API's throughput (bench/http-floor). A dependency or a logging change that
 * brings one back fails here rather than only in a benchmark. Calls made by the test runner
 * itself are told apart by their stack.
 */
describe('the request path enters no AsyncLocalStorage', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let api: SecuredApi;
  const entered: string[] = [];
  type Entry = (...args: unknown[]) => unknown;
  const proto = AsyncLocalStorage.prototype as unknown as Record<'run' | 'enterWith', Entry>;
  const original = { run: proto.run, enterWith: proto.enterWith };
  const fromTheApp = (stack: string): boolean =>
    /fastify|@nestjs|nestjs-pino|[/\\](apps|libs)[/\\]/.test(stack);
  const watching = (inner: Entry): Entry =>
    function (this: unknown, ...args: unknown[]) {
      const stack = new Error('entered').stack ?? '';
      if (fromTheApp(stack)) entered.push(stack);
      return inner.apply(this, args);
    };

  beforeAll(async () => {
    api = await startSecuredApi(db.url, prefix);
    proto.run = watching(original.run);
    proto.enterWith = watching(original.enterWith);
  });
  afterAll(async () => {
    proto.run = original.run;
    proto.enterWith = original.enterWith;
    await api?.close();
  });

  it('on public, authenticated, refused, failing-validation and unknown routes', async () => {
    const requester = await api.principal('alc-requester', ['requester']);
    const replies = [
      await api.call('GET', '/healthz'),
      await api.call('GET', '/v1/tokens/self', requester.token),
      await api.call('GET', '/v1/instances', requester.token),
      await api.call('GET', '/v1/vm-requests', requester.token),
      await api.call('GET', '/v1/audit', requester.token),
      await api.call('POST', '/v1/principals', api.adminToken, {
        kind: 'person',
        name: 'x',
        roles: ['nope'],
      }),
      await api.call('GET', '/v1/instances'),
      await api.call('GET', '/v1/no-such-route'),
    ].map((r) => r.status);
    expect(replies).toEqual([200, 200, 200, 200, 403, 400, 401, 404]);
    expect(entered).toEqual([]);
  });
});
