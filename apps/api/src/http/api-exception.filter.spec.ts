import { Body, Controller, Get, Global, Module, Post, Query } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DomainError, NotFound, ValidationFailed } from '@norm/core';
import { NORM_PINO } from '@norm/platform';
import { createZodDto } from 'nestjs-zod';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createFastifyAdapter } from './fastify-adapter';
import { toErrorResponse } from './api-exception.filter';
import { ApiHttpModule } from './http.module';

class CreateThingDto extends createZodDto(
  z.strictObject({
    name: z.string().min(3),
    size: z.strictObject({ memoryMb: z.number().int().positive() }),
  }),
) {}
class ListQueryDto extends createZodDto(z.object({ limit: z.coerce.number().int().max(100).optional() })) {}

const SECRET = 'password=hunter2 at db.internal:5432';

@Controller('t')
class ThrowingController {
  @Get('not-found')
  notFound(): never {
    throw new NotFound('vm-request', 'r-1');
  }
  @Get('host-failed')
  hostFailed(): never {
    throw new DomainError('XlCommandError', 'xl create failed', {
      host: 'xen-1',
      argv: ['xl', 'create'],
      stderr: 'boom',
    });
  }
  @Get('unauthenticated')
  unauthenticated(): never {
    throw new DomainError('Unauthenticated', 'authentication required', { reason: 'token revoked' });
  }
  @Get('rate-limited')
  rateLimited(): never {
    throw new DomainError('RateLimited', 'too many requests', { bucket: 'token', retryAfterS: 1.2 });
  }
  @Get('config')
  config(): never {
    throw new DomainError('ConfigInvalid', SECRET);
  }
  @Get('bug')
  bug(): never {
    throw new TypeError(SECRET);
  }
  @Get('domain-validation')
  domainValidation(): never {
    throw new ValidationFailed('bad', [{ path: 'name', message: 'taken' }]);
  }
  @Get('list')
  list(@Query() query: ListQueryDto): ListQueryDto {
    return query;
  }
  @Post('things')
  create(@Body() body: CreateThingDto): CreateThingDto {
    return body;
  }
}

const lines: Array<Record<string, unknown>> = [];

@Global()
@Module({
  providers: [
    {
      provide: NORM_PINO,
      useValue: pino(
        { level: 'info' },
        { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
      ),
    },
  ],
  exports: [NORM_PINO],
})
class TestLogModule {}

@Module({ imports: [TestLogModule, ApiHttpModule], controllers: [ThrowingController] })
class TestModule {}

let app: NestFastifyApplication;

beforeAll(async () => {
  app = await NestFactory.create<NestFastifyApplication>(TestModule, createFastifyAdapter(), {
    logger: false,
  });
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
});
afterAll(async () => {
  await app.close();
});
beforeEach(() => {
  lines.length = 0;
});

async function call(
  method: 'GET' | 'POST',
  url: string,
  init: { body?: string; headers?: Record<string, string> } = {},
) {
  const res = await app.inject({ method, url, payload: init.body, headers: init.headers });
  return {
    status: res.statusCode,
    headers: res.headers,
    body: res.json<{ error: Record<string, unknown> }>(),
  };
}

describe('ApiExceptionFilter', () => {
  it('maps a domain error through the table, with details and the request id', async () => {
    const res = await call('GET', '/t/not-found', { headers: { 'x-request-id': 'req-42' } });
    expect(res.status).toBe(404);
    expect(res.headers['x-request-id']).toBe('req-42');
    expect(res.body).toEqual({
      error: {
        code: 'NotFound',
        message: 'vm-request not found',
        details: { kind: 'vm-request', id: 'r-1' },
        requestId: 'req-42',
      },
    });
  });

  it('hides host details from the caller and logs them once', async () => {
    const res = await call('GET', '/t/host-failed');
    expect(res.status).toBe(502);
    expect(res.body.error).toEqual({
      code: 'XlCommandError',
      message: 'xl create failed',
      requestId: res.headers['x-request-id'],
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      code: 'XlCommandError',
      details: { host: 'xen-1', stderr: 'boom' },
      requestId: res.headers['x-request-id'],
    });
  });

  it('answers 401 with the bearer challenge and never returns the reason', async () => {
    const res = await call('GET', '/t/unauthenticated');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(res.body.error.details).toBeUndefined();
    expect(JSON.stringify(res.body)).not.toContain('revoked');
    // The reason goes on the request's completion line (see request-logging.spec), not a line of its own.
    expect(lines).toEqual([]);
    expect(toErrorResponse(new DomainError('Unauthenticated', 'x', { reason: 'r' })).hiddenDetails).toEqual({
      reason: 'r',
    });
  });

  it('answers 429 with Retry-After in whole seconds', async () => {
    const res = await call('GET', '/t/rate-limited');
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('2');
    expect(res.body.error).toMatchObject({
      code: 'RateLimited',
      details: { bucket: 'token', retryAfterS: 1.2 },
    });
  });

  it('turns an unknown error into a bare 500 and ONE log line with the stack', async () => {
    const res = await call('GET', '/t/bug');
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('InternalError');
    expect(res.body.error.requestId).toBe(res.headers['x-request-id']);
    expect(JSON.stringify(res.body)).not.toContain('hunter2');
    expect(lines).toHaveLength(1);
    const err = lines[0]?.err as { message: string; stack: string };
    expect(err.message).toBe(SECRET);
    expect(err.stack).toContain('TypeError');
    expect(lines[0]).toMatchObject({ level: 50, requestId: res.headers['x-request-id'], url: '/t/bug' });
  });

  it('does not echo the message of a known 500', async () => {
    const res = await call('GET', '/t/config');
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('ConfigInvalid');
    expect(JSON.stringify(res.body)).not.toContain('hunter2');
  });

  it('passes a domain ValidationFailed through as 400 with its issues', async () => {
    const res = await call('GET', '/t/domain-validation');
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual({ issues: [{ path: 'name', message: 'taken' }] });
  });
});

describe('validation at the edge', () => {
  const json = { 'content-type': 'application/json' };

  it('accepts a valid body', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/t/things',
      payload: { name: 'web', size: { memoryMb: 512 } },
    });
    expect(res.statusCode).toBe(201);
  });

  it('lists every issue as {path, message}', async () => {
    const res = await call('POST', '/t/things', {
      headers: json,
      body: JSON.stringify({ name: 'x', size: { memoryMb: -1 } }),
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('ValidationFailed');
    const issues = (res.body.error.details as { issues: Array<{ path: string; message: string }> }).issues;
    expect(issues.map((i) => i.path).sort()).toEqual(['name', 'size.memoryMb']);
    for (const issue of issues) expect(issue.message).toEqual(expect.any(String));
  });

  it('rejects unknown fields, also nested ones', async () => {
    const res = await call('POST', '/t/things', {
      headers: json,
      body: JSON.stringify({ name: 'web', ownerId: 'me', size: { memoryMb: 1, cpu: 2 } }),
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.error.details)).toContain('ownerId');
    expect(JSON.stringify(res.body.error.details)).toContain('cpu');
  });

  it('validates query strings', async () => {
    const res = await call('GET', '/t/list?limit=1000');
    expect(res.status).toBe(400);
    expect(res.body.error.details).toMatchObject({ issues: [{ path: 'limit' }] });
  });

  it('answers bad JSON with 400 in the same shape', async () => {
    const res = await call('POST', '/t/things', { headers: json, body: '{"name": ' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'BadRequest', requestId: res.headers['x-request-id'] });
  });

  it('answers an oversized body with 413 in the same shape', async () => {
    const res = await call('POST', '/t/things', {
      headers: json,
      body: JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PayloadTooLarge');
  });

  it('answers an unknown route with 404 in the same shape', async () => {
    const res = await call('GET', '/nowhere');
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'NotFound', requestId: res.headers['x-request-id'] });
  });

  it('replaces an unsafe incoming request id', async () => {
    const res = await call('GET', '/nowhere', { headers: { 'x-request-id': 'evil\u0007id with spaces' } });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.error.requestId).toBe(res.headers['x-request-id']);
  });
});
