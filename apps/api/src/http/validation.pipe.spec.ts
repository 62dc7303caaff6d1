import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationFailed } from '@norm/core';
import { illFormedText, NormValidationPipe, validationIssues } from './validation.pipe';

describe('validationIssues', () => {
  const schema = z.strictObject({
    name: z.string(),
    limits: z.strictObject({ vcpus: z.number().optional() }).optional(),
  });

  it('names each unknown field at its own path, nested ones included', () => {
    const result = schema.safeParse({ name: 'a', state: 'running', ownerId: 'x', limits: { version: 3 } });
    expect(result.success).toBe(false);
    expect(
      validationIssues(result.error)
        .map((i) => i.path)
        .sort(),
    ).toEqual(['limits.version', 'ownerId', 'state']);
  });

  it('keeps the other issues as zod reports them', () => {
    const result = schema.safeParse({ approvedBy: 'me' });
    const issues = validationIssues(result.error);
    expect(issues.map((i) => i.path)).toEqual(['name', 'approvedBy']);
    expect(issues[0]!.message).not.toBe('');
    expect(issues[1]!.message).toBe('unknown field: this request does not accept it');
  });

  it('never echoes anything but paths and messages for a non-zod error', () => {
    expect(validationIssues(new Error('secret=hunter2'))).toEqual([{ path: '', message: 'invalid request' }]);
  });
});

describe('illFormedText', () => {
  it('passes valid text, emoji (a surrogate pair) included, and non-text values', () => {
    expect(illFormedText({ a: 'Zoë 🚀', b: [1, null, true, { c: '\u2028' }] })).toEqual([]);
  });

  it('names every lone surrogate, high or low, in values and keys, at any depth', () => {
    expect(
      illFormedText({
        purpose: 'half \ud83d',
        labels: { ['k\udc00']: 'v', ok: 'fine' },
        list: ['x', { deep: '\udc00\ud83d' }],
      }).map((i) => i.path),
    ).toEqual(['purpose', 'labels.k\udc00', 'list.1.deep']);
  });

  it('names every NUL character, in values and keys, with its own message', () => {
    expect(illFormedText({ purpose: 'a\u0000b', labels: { ['k\u0000']: 'v' }, list: ['\u0000'] })).toEqual([
      { path: 'purpose', message: 'text must not hold a NUL character (\\u0000)' },
      { path: 'labels.k\u0000', message: 'text must not hold a NUL character (\\u0000)' },
      { path: 'list.0', message: 'text must not hold a NUL character (\\u0000)' },
    ]);
  });
});

describe('NormValidationPipe', () => {
  const pipe = new NormValidationPipe();

  it.each([
    ['a lone surrogate', 'k\udc00'],
    ['a NUL character', 'k\u0000'],
  ])('refuses %s in what the client sent, at any depth, naming where', (_what, key) => {
    for (const type of ['body', 'query', 'param'] as const) {
      let caught: unknown;
      try {
        pipe.transform({ ok: 'Zoë 🚀', labels: { [key]: 'v' } }, { type });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ValidationFailed);
      expect(JSON.stringify((caught as ValidationFailed).details)).toContain('labels.k');
    }
  });

  it('passes valid text through, and leaves the server’s own arguments (the acting context) alone', () => {
    expect(pipe.transform({ a: 'Zoë 🚀', b: [1, { c: '\u2028' }] }, { type: 'body' })).toEqual({
      a: 'Zoë 🚀',
      b: [1, { c: '\u2028' }],
    });
    const context = { note: 'half \ud83d' };
    expect(pipe.transform(context, { type: 'custom' })).toBe(context);
  });
});
