import { describe, expect, it } from 'vitest';
import { ReadCoalescer } from './read-coalescer';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A fetch the test answers by hand: each call waits until the test settles it. */
function manualFetch(): {
  fetch: (keys: string[]) => Promise<Map<string, string>>;
  calls: Array<{
    keys: string[];
    answer: (values: Record<string, string>) => void;
    fail: (e: Error) => void;
  }>;
} {
  const calls: Array<{
    keys: string[];
    answer: (values: Record<string, string>) => void;
    fail: (e: Error) => void;
  }> = [];
  return {
    calls,
    fetch: (keys) =>
      new Promise((resolve, reject) => {
        calls.push({ keys, answer: (values) => resolve(new Map(Object.entries(values))), fail: reject });
      }),
  };
}

describe('ReadCoalescer', () => {
  it('sends an idle read at once, alone', async () => {
    const f = manualFetch();
    const reads = new ReadCoalescer(f.fetch, 2);
    const a = reads.load('a');
    await tick();
    expect(f.calls.map((c) => c.keys)).toEqual([['a']]);
    f.calls[0]!.answer({ a: 'A' });
    expect(await a).toBe('A');
  });

  it('queues reads while its fetches are out and sends them together when one returns', async () => {
    const f = manualFetch();
    const reads = new ReadCoalescer(f.fetch, 1);
    const first = reads.load('a');
    const queued = ['b', 'c', 'b', 'd'].map((k) => reads.load(k));
    await tick();
    expect(f.calls.map((c) => c.keys)).toEqual([['a']]);
    f.calls[0]!.answer({ a: 'A' });
    await tick();
    // One fetch for the three distinct keys; the key asked twice is fetched once.
    expect(f.calls.map((c) => c.keys)).toEqual([['a'], ['b', 'c', 'd']]);
    f.calls[1]!.answer({ b: 'B', d: 'D' });
    expect(await first).toBe('A');
    // A key the fetch found nothing for reads as undefined.
    expect(await Promise.all(queued)).toEqual(['B', undefined, 'B', 'D']);
  });

  it('never answers a read with a fetch sent before it was asked', async () => {
    const f = manualFetch();
    const reads = new ReadCoalescer(f.fetch, 1);
    const before = reads.load('a');
    await tick();
    const after = reads.load('a');
    f.calls[0]!.answer({ a: 'old' });
    expect(await before).toBe('old');
    await tick();
    expect(f.calls).toHaveLength(2);
    f.calls[1]!.answer({ a: 'new' });
    expect(await after).toBe('new');
  });

  it('fails only the reads of a failed fetch', async () => {
    const f = manualFetch();
    const reads = new ReadCoalescer(f.fetch, 1);
    const lost = reads.load('a');
    const next = reads.load('b');
    await tick();
    f.calls[0]!.fail(new Error('connection lost'));
    await expect(lost).rejects.toThrow('connection lost');
    await tick();
    f.calls[1]!.answer({ b: 'B' });
    expect(await next).toBe('B');
  });

  it('keeps at most maxInFlight fetches out and at most maxBatch keys in one', async () => {
    const f = manualFetch();
    const reads = new ReadCoalescer(f.fetch, 2, 3);
    const all = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((k) => reads.load(k));
    await tick();
    expect(f.calls.map((c) => c.keys)).toEqual([['a'], ['b']]);
    f.calls[0]!.answer({});
    await tick();
    expect(f.calls.map((c) => c.keys)).toEqual([['a'], ['b'], ['c', 'd', 'e']]);
    f.calls[1]!.answer({});
    await tick();
    expect(f.calls.map((c) => c.keys).slice(3)).toEqual([['f', 'g']]);
    f.calls[2]!.answer({});
    f.calls[3]!.answer({});
    expect(await Promise.all(all)).toEqual(Array.from({ length: 7 }, () => undefined));
  });
});
