import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DestinationStream } from 'pino';
import { describe, expect, it } from 'vitest';
import { DomainError } from '@norm/core';
import { REDACTED, redactSecrets } from './redaction';
import { createLogDestination, createRootLogger } from './root-logger';

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

  it('redacts secrets in the fields of logged errors and in child bindings', () => {
    const { logger, lines } = capture();
    logger
      .child({ ssh: { privateKey: 'k-binding' } })
      .warn(
        { err: new DomainError('HostUnreachable', 'down', { host: 'xen-1', password: 'p-err' }) },
        'failed',
      );
    const text = JSON.stringify(lines[0]);
    expect(text).not.toContain('k-binding');
    expect(text).not.toContain('p-err');
    expect(lines[0]).toMatchObject({
      ssh: { privateKey: REDACTED },
      err: { details: { host: 'xen-1', password: REDACTED } },
    });
  });
});

describe('createLogDestination', () => {
  it('writes every line whole and in order, multi-byte text included, through bursts', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'norm-log-')), 'out.log');
    const destination = createLogDestination(file);
    const logger = createRootLogger({ app: 'api', level: 'info', destination });
    await new Promise((resolve) => (destination as unknown as NodeJS.EventEmitter).once('ready', resolve));
    // A burst far larger than one write, so most lines queue behind a write in flight.
    for (let i = 0; i < 5_000; i++) logger.info({ i, who: 'Zoë 🚀 Ångström' }, 'line');
    (destination as unknown as { flushSync(): void }).flushSync();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(5_000);
    lines.forEach((line, i) => expect(JSON.parse(line)).toMatchObject({ i, who: 'Zoë 🚀 Ångström' }));
  });
});

describe('createLogDestination batching', () => {
  it('writes a short batch within the periodic flush, without anyone flushing', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'norm-log-')), 'out.log');
    const destination = createLogDestination(file);
    const logger = createRootLogger({ app: 'api', level: 'info', destination });
    await new Promise((resolve) => (destination as unknown as NodeJS.EventEmitter).once('ready', resolve));
    logger.info({ n: 1 }, 'quiet line');
    expect(readFileSync(file, 'utf8')).toBe('');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ n: 1, msg: 'quiet line' });
  });

  it('writes what is pending on flush(cb) and on end', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'norm-log-')), 'out.log');
    const destination = createLogDestination(file) as unknown as DestinationStream &
      NodeJS.EventEmitter & { flush(cb: () => void): void; end(): void };
    await new Promise((resolve) => destination.once('ready', resolve));
    destination.write('{"a":1}\n');
    await new Promise<void>((resolve) => destination.flush(() => resolve()));
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n');
    destination.write('{"b":2}\n');
    const closed = new Promise((resolve) => destination.once('close', resolve));
    destination.end();
    await closed;
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n{"b":2}\n');
  });
});

describe('redactSecrets', () => {
  it('matches field names regardless of case, dashes and underscores', () => {
    expect(
      redactSecrets({ private_key: 1, PRIVATE_KEY: 2, 'Private-Key': 3, Authorization: 4, apiKey: 5 }),
    ).toEqual({
      private_key: REDACTED,
      PRIVATE_KEY: REDACTED,
      'Private-Key': REDACTED,
      Authorization: REDACTED,
      apiKey: REDACTED,
    });
  });

  it('copies on write and returns objects without secrets as they are', () => {
    const clean = { a: { b: [1, { c: 'd' }] } };
    expect(redactSecrets(clean)).toBe(clean);
    const dirty = { a: { token: 't' }, b: { keep: true } };
    const out = redactSecrets(dirty);
    expect(out).toEqual({ a: { token: REDACTED }, b: { keep: true } });
    expect(dirty.a.token).toBe('t');
    expect(out.b).toBe(dirty.b);
  });

  it('redacts deep down but stops at the depth cap on runaway structures', () => {
    const cyclic: Record<string, unknown> = { password: 'p' };
    cyclic.self = cyclic;
    expect(() => redactSecrets(cyclic)).not.toThrow();
    expect(redactSecrets({ a: { b: { c: { d: { e: { f: { secret: 's' } } } } } } })).toEqual({
      a: { b: { c: { d: { e: { f: { secret: REDACTED } } } } } },
    });
  });

  it('gives the same verdict for a key the second time, from its cache', () => {
    expect(redactSecrets({ Client_Secret: 'x', plain: 'y' })).toEqual({
      Client_Secret: REDACTED,
      plain: 'y',
    });
    expect(redactSecrets({ Client_Secret: 'x', plain: 'y' })).toEqual({
      Client_Secret: REDACTED,
      plain: 'y',
    });
  });

  it('leaves class instances to their serializers', () => {
    const date = new Date(0);
    expect(redactSecrets({ at: date }).at).toBe(date);
  });
});
