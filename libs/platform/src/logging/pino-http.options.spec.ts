import { type IncomingMessage, type ServerResponse } from 'node:http';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { pinoHttpOptions } from './pino-http.options';

const options = pinoHttpOptions(pino({ enabled: false }));

function req(url: string, extra: Record<string, unknown> = {}): IncomingMessage {
  return { url, headers: {}, ...extra } as unknown as IncomingMessage;
}

describe('pinoHttpOptions', () => {
  it('keeps the id Fastify already assigned', () => {
    const res = { setHeader: () => undefined } as unknown as ServerResponse;
    expect(options.genReqId?.(req('/x', { id: 'fastify-id' }), res)).toBe('fastify-id');
  });

  it('otherwise derives the id from x-request-id and echoes it', () => {
    const set: Record<string, unknown> = {};
    const res = { setHeader: (k: string, v: unknown) => (set[k] = v) } as unknown as ServerResponse;
    const id = options.genReqId?.(req('/x', { headers: { 'x-request-id': 'abc' } }), res);
    expect(id).toBe('abc');
    expect(set['x-request-id']).toBe('abc');
  });

  it('does not log probe traffic, whatever the middleware did to req.url', () => {
    const ignore = (options.autoLogging as { ignore: (r: IncomingMessage) => boolean }).ignore;
    expect(ignore(req('/', { originalUrl: '/healthz' }))).toBe(true);
    expect(ignore(req('/readyz?verbose=1'))).toBe(true);
    expect(ignore(req('/v1/vm-requests'))).toBe(false);
  });

  it('logs 4xx at warn and 5xx at error', () => {
    const level = (status: number) =>
      options.customLogLevel?.(req('/'), { statusCode: status } as ServerResponse, undefined);
    expect(level(200)).toBe('info');
    expect(level(404)).toBe('warn');
    expect(level(503)).toBe('error');
  });
});
