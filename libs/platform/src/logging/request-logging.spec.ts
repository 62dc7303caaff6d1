import { fastify, type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PinoLoggerAdapter } from './pino-logger.adapter';
import { requestIdFrom } from './request-id';
import { registerRequestLogging } from './request-logging';
import { noteResponseError } from './response-error-code';
import { createRootLogger } from './root-logger';

const lines: Array<Record<string, unknown>> = [];
const raw: string[] = [];
const root = createRootLogger({
  app: 'api',
  level: 'info',
  destination: {
    write: (line: string) => {
      raw.push(line);
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  },
});
const log = new PinoLoggerAdapter(root);
let server: FastifyInstance;

beforeAll(async () => {
  server = fastify({ genReqId: (req) => requestIdFrom(req.headers['x-request-id']) });
  registerRequestLogging(server, root);
  server.get('/healthz', () => ({ status: 'ok' }));
  server.get('/readyz', async (_req, reply) => reply.code(503).send({}));
  server.get('/hello', (request) => {
    // Code acting for a request names its id (the domain gets it in ActingContext.requestId).
    log.info('saying hello', { to: 'world', requestId: request.id });
    return { hello: 'world' };
  });
  server.post('/things', async (request) => {
    // Past an await, as a real handler would be after a database call.
    await new Promise((resolve) => setTimeout(resolve, 1));
    log.info('thing created', { body: request.body, requestId: request.id });
    return { ok: true };
  });
  server.get('/refused', (_request, reply) => {
    noteResponseError(reply.raw, {
      code: 'Unauthenticated',
      details: { reason: 'token revoked', token: 't' },
    });
    return reply.code(403).send({});
  });
  await server.ready();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  lines.length = 0;
  raw.length = 0;
  root.level = 'info';
});

describe('registerRequestLogging', () => {
  it('echoes the request id and writes one completion line carrying it', async () => {
    const res = await server.inject({
      method: 'GET',
      url: '/hello?x=1',
      headers: { 'x-request-id': 'abc-1' },
    });
    expect(res.headers['x-request-id']).toBe('abc-1');
    expect(lines).toEqual([
      expect.objectContaining({ msg: 'saying hello', requestId: 'abc-1', to: 'world' }),
      expect.objectContaining({
        msg: 'request completed',
        level: 'info',
        requestId: 'abc-1',
        req: { method: 'GET', url: '/hello?x=1' },
        res: { statusCode: 200 },
        responseTime: expect.any(Number) as number,
      }),
    ]);
  });

  it('logs a POST with a body after an await: redacted handler line, completion line with the id', async () => {
    const res = await server.inject({
      method: 'POST',
      url: '/things',
      payload: { name: 'x', password: 'p' },
    });
    const requestId = res.headers['x-request-id'];
    expect(lines[0]).toMatchObject({
      msg: 'thing created',
      requestId,
      body: { name: 'x', password: '[redacted]' },
    });
    expect(lines[1]).toMatchObject({
      msg: 'request completed',
      requestId,
      req: { method: 'POST', url: '/things' },
      res: { statusCode: 200 },
    });
    expect(lines).toHaveLength(2);
  });

  it('logs 4xx at warn with the error the filter noted, details redacted', async () => {
    await server.inject({ method: 'GET', url: '/refused' });
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'warn',
        errorCode: 'Unauthenticated',
        errorDetails: { reason: 'token revoked', token: '[redacted]' },
        res: { statusCode: 403 },
      }),
    ]);
  });

  it('skips successful probes but logs failing ones', async () => {
    await server.inject({ method: 'GET', url: '/healthz' });
    expect(lines).toEqual([]);
    await server.inject({ method: 'GET', url: '/readyz' });
    expect(lines).toEqual([expect.objectContaining({ level: 'error', res: { statusCode: 503 } })]);
  });

  it('echoes the id on routes that do not exist', async () => {
    const res = await server.inject({
      method: 'GET',
      url: '/nowhere',
      headers: { 'x-request-id': 'abc-404' },
    });
    expect(res.headers['x-request-id']).toBe('abc-404');
    expect(lines[0]).toMatchObject({ requestId: 'abc-404', level: 'warn' });
  });

  it('writes the success line byte for byte as pino would, escapes included', async () => {
    const url = '/hello?q=%22x%22&name=' + encodeURIComponent('zoë "quoted" \\ back');
    await server.inject({ method: 'GET', url, headers: { 'x-request-id': 'abc-2' } });
    const built = raw.at(-1)!;
    const fields = JSON.parse(built) as { responseTime: number };
    root.info(
      {
        requestId: 'abc-2',
        req: { method: 'GET', url },
        res: { statusCode: 200 },
        responseTime: fields.responseTime,
      },
      'request completed',
    );
    const byPino = raw.at(-1)!;
    const withoutTime = (line: string): string => line.replace(/,"time":"[^"]+"/, '');
    expect(withoutTime(built)).toBe(withoutTime(byPino));
    expect(built).toMatch(/,"time":"\d{4}-\d\d-\d\dT[\d:.]+Z",/);
  });

  it('writes no success line when info is not enabled, and still the failures', async () => {
    root.level = 'warn';
    await server.inject({ method: 'GET', url: '/hello' });
    expect(lines).toEqual([]);
    await server.inject({ method: 'GET', url: '/refused' });
    expect(lines).toEqual([expect.objectContaining({ level: 'warn', res: { statusCode: 403 } })]);
  });
});
