import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff';

describe('backoffDelay', () => {
  const policy = { baseMs: 100, maxMs: 1_000 };

  it('doubles per failure up to the cap, with half of each delay jittered', () => {
    expect([1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n, policy, () => 0))).toEqual([
      50, 100, 200, 400, 500, 500,
    ]);
    expect([1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n, policy, () => 1))).toEqual([
      100, 200, 400, 800, 1_000, 1_000,
    ]);
  });

  it('stays finite for absurd failure counts', () => {
    expect(backoffDelay(10_000, policy, () => 0.5)).toBe(750);
  });
});
