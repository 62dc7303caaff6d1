import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { validationIssues } from './validation.pipe';

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
    expect(validationIssues(result.error)).toEqual([
      { path: 'name', message: expect.any(String) },
      { path: 'approvedBy', message: 'unknown field: this request does not accept it' },
    ]);
  });

  it('never echoes anything but paths and messages for a non-zod error', () => {
    expect(validationIssues(new Error('secret=hunter2'))).toEqual([{ path: '', message: 'invalid request' }]);
  });
});
