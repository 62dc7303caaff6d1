import { describe, expect, it } from 'vitest';
import { REDACTED, redactPaths } from './redaction';
import { createRootLogger } from './root-logger';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createRootLogger({
    app: 'api',
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { logger, lines };
}

describe('createRootLogger', () => {
  it('writes JSON lines with app, textual level, ISO time and the message', () => {
    const { logger, lines } = capture();
    logger.warn({ vmId: 'v-1' }, 'something odd');
    expect(lines[0]).toMatchObject({ app: 'api', level: 'warn', msg: 'something odd', vmId: 'v-1' });
    expect(new Date(lines[0]?.time as string).toISOString()).toBe(lines[0]?.time);
  });

  it('redacts secret fields at the top level and nested down to four levels', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        token: 't0',
        password: 'p0',
        user: { password: 'p1', name: 'ann' },
        host: { ssh: { auth: { privateKey: 'k3', user: 'norm' } } },
        a: { b: { c: { d: { secret: 's4' } } } },
        list: [{ token: 't-in-array' }],
      },
      'sensitive',
    );
    const text = JSON.stringify(lines[0]);
    for (const secret of ['t0', 'p0', 'p1', 'k3', 's4', 't-in-array'])
      expect(text).not.toContain(`"${secret}"`);
    expect(lines[0]).toMatchObject({
      token: REDACTED,
      user: { password: REDACTED, name: 'ann' },
      host: { ssh: { auth: { privateKey: REDACTED, user: 'norm' } } },
      a: { b: { c: { d: { secret: REDACTED } } } },
    });
  });

  it('redacts authorization and cookie headers wherever headers are logged', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        req: { headers: { authorization: 'Bearer abc', cookie: 'sid=1', 'x-api-key': 'k', accept: '*/*' } },
        res: { headers: { 'set-cookie': 'sid=2' } },
        headers: { authorization: 'Bearer def' },
      },
      'request',
    );
    expect(lines[0]).toMatchObject({
      req: { headers: { authorization: REDACTED, cookie: REDACTED, 'x-api-key': REDACTED, accept: '*/*' } },
      res: { headers: { 'set-cookie': REDACTED } },
      headers: { authorization: REDACTED },
    });
  });

  it('serializes errors under both `err` and `error`, with the stack', () => {
    const { logger, lines } = capture();
    logger.error({ error: new Error('boom') }, 'failed');
    const error = lines[0]?.error as { type: string; message: string; stack: string };
    expect(error).toMatchObject({ type: 'Error', message: 'boom' });
    expect(error.stack).toContain('boom');
  });

  it('enumerates each secret field once per depth', () => {
    const paths = redactPaths(1);
    expect(paths).toContain('token');
    expect(paths).toContain('*.privateKey');
    expect(new Set(paths).size).toBe(paths.length);
  });
});
