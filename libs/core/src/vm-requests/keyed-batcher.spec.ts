import { describe, expect, it } from 'vitest';
import { type BatchOutcome, KeyedBatcher } from './keyed-batcher';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** An item: a name, its own keys and its shared keys (mutable, as a regrouped request's are). */
interface Item {
  name: string;
  own: string[];
  shared: string[];
}

const item = (name: string, own: string[] = [], shared: string[] = []): Item => ({ name, own, shared });

/** A run the test settles by hand: each batch waits until the test answers it. */
function manualRun(): {
  run: (items: Item[]) => Promise<Array<BatchOutcome<string>>>;
  batches: Array<{
    names: string[];
    answer: (outcomes?: Array<BatchOutcome<string>>) => void;
    fail: (e: Error) => void;
  }>;
} {
  const batches: Array<{
    names: string[];
    answer: (outcomes?: Array<BatchOutcome<string>>) => void;
    fail: (e: Error) => void;
  }> = [];
  return {
    batches,
    run: (items) =>
      new Promise((resolve, reject) => {
        batches.push({
          names: items.map((i) => i.name),
          // By default every item is done, its value its name in capitals.
          answer: (outcomes) =>
            resolve(outcomes ?? items.map((i) => ({ kind: 'done', value: i.name.toUpperCase() }))),
          fail: reject,
        });
      }),
  };
}

const batcher = (
  r: ReturnType<typeof manualRun>,
  maxInFlight = 1,
  maxBatch = 64,
  minBatchAlongside?: number,
): KeyedBatcher<Item, string> =>
  new KeyedBatcher<Item, string>((i) => ({ own: i.own, shared: i.shared }), r.run, {
    maxInFlight,
    maxBatch,
    ...(minBatchAlongside === undefined ? {} : { minBatchAlongside }),
  });

describe('KeyedBatcher', () => {
  it('runs an idle item at once, alone', async () => {
    const r = manualRun();
    const b = batcher(r);
    const a = b.submit(item('a', ['name:a']));
    await tick();
    expect(r.batches.map((x) => x.names)).toEqual([['a']]);
    r.batches[0]!.answer();
    expect(await a).toBe('A');
  });

  it('queues items while a batch runs and runs them together when it ends', async () => {
    const r = manualRun();
    const b = batcher(r);
    const first = b.submit(item('a', ['name:a'], ['owner:1']));
    const queued = ['b', 'c', 'd'].map((n, i) => b.submit(item(n, [`name:${n}`], [`owner:${i + 2}`])));
    await tick();
    expect(r.batches.map((x) => x.names)).toEqual([['a']]);
    r.batches[0]!.answer();
    await tick();
    expect(r.batches.map((x) => x.names)).toEqual([['a'], ['b', 'c', 'd']]);
    r.batches[1]!.answer();
    expect(await first).toBe('A');
    expect(await Promise.all(queued)).toEqual(['B', 'C', 'D']);
  });

  it('puts items of one shared key in one batch, in order, but never two items of one own key', async () => {
    const r = manualRun();
    const b = batcher(r);
    const blocker = b.submit(item('x', ['name:x']));
    const all = [
      b.submit(item('a', ['name:web'], ['owner:1'])),
      b.submit(item('b', ['name:db'], ['owner:1'])),
      // Same name as a: the next batch.
      b.submit(item('c', ['name:web'], ['owner:2'])),
      b.submit(item('d', ['name:cache'], ['owner:3'])),
    ];
    await tick();
    r.batches[0]!.answer();
    await tick();
    expect(r.batches[1]!.names).toEqual(['a', 'b', 'd']);
    r.batches[1]!.answer();
    await tick();
    expect(r.batches[2]!.names).toEqual(['c']);
    r.batches[2]!.answer();
    expect(await blocker).toBe('X');
    expect(await Promise.all(all)).toEqual(['A', 'B', 'C', 'D']);
  });

  it('never runs an item beside a running batch that holds one of its keys', async () => {
    const r = manualRun();
    const b = batcher(r, 2);
    const a = b.submit(item('a', ['name:a'], ['owner:1']));
    await tick();
    // Owner 1 is held by the running batch: b waits although a second batch could run.
    const held = b.submit(item('b', ['name:b'], ['owner:1']));
    const free = b.submit(item('c', ['name:c'], ['owner:2']));
    await tick();
    expect(r.batches.map((x) => x.names)).toEqual([['a'], ['c']]);
    r.batches[0]!.answer();
    await tick();
    expect(r.batches.map((x) => x.names)).toEqual([['a'], ['c'], ['b']]);
    r.batches[1]!.answer();
    r.batches[2]!.answer();
    expect(await Promise.all([a, held, free])).toEqual(['A', 'B', 'C']);
  });

  it('starts a batch beside a running one only once it holds minBatchAlongside items', async () => {
    const r = manualRun();
    const b = batcher(r, 2, 64, 3);
    const a = b.submit(item('a', ['name:a'], ['owner:1']));
    await tick();
    const names = (): string[][] => r.batches.map((x) => x.names);
    expect(names()).toEqual([['a']]);
    // Two free items are too few to run beside a: they wait.
    const early = ['b', 'c'].map((n, i) => b.submit(item(n, [`name:${n}`], [`owner:${i + 2}`])));
    await tick();
    expect(names()).toEqual([['a']]);
    // An item that shares a's key does not count: it could not run now anyway.
    const held = b.submit(item('h', ['name:h'], ['owner:1']));
    await tick();
    expect(names()).toEqual([['a']]);
    // The third free one: the three go together, in order, while a still runs.
    const third = b.submit(item('d', ['name:d'], ['owner:4']));
    await tick();
    expect(names()).toEqual([['a'], ['b', 'c', 'd']]);
    // Both slots are taken: another item queues.
    const late = b.submit(item('e', ['name:e'], ['owner:5']));
    await tick();
    expect(names()).toEqual([['a'], ['b', 'c', 'd']]);
    // a ends and h's key is free, but b, c, d still run: h and e are two, too few beside them.
    r.batches[0]!.answer();
    await tick();
    expect(names()).toEqual([['a'], ['b', 'c', 'd']]);
    // With nothing running, the queue goes whatever its size.
    r.batches[1]!.answer();
    await tick();
    expect(names()).toEqual([['a'], ['b', 'c', 'd'], ['h', 'e']]);
    r.batches[2]!.answer();
    expect(await Promise.all([a, ...early, held, third, late])).toEqual(['A', 'B', 'C', 'H', 'D', 'E']);
  });

  it('lets no item overtake an older one it shares a key with', async () => {
    const r = manualRun();
    const b = batcher(r);
    const x = b.submit(item('x', ['name:web']));
    await tick();
    // a waits for name:web; b shares only owner 1 with a, yet must not run before it.
    const a = b.submit(item('a', ['name:web'], ['owner:1']));
    const bb = b.submit(item('b', ['name:db'], ['owner:1']));
    const c = b.submit(item('c', ['name:cache'], ['owner:2']));
    await tick();
    r.batches[0]!.answer();
    await tick();
    expect(r.batches[1]!.names).toEqual(['a', 'b', 'c']);
    r.batches[1]!.answer();
    expect(await Promise.all([x, a, bb, c])).toEqual(['X', 'A', 'B', 'C']);

    // And with the older one held back by a running batch: the younger waits with it.
    const r2 = manualRun();
    const b2 = batcher(r2, 2);
    const y = b2.submit(item('y', ['name:web']));
    await tick();
    const older = b2.submit(item('older', ['name:web'], ['owner:1']));
    const younger = b2.submit(item('younger', ['name:db'], ['owner:1']));
    await tick();
    expect(r2.batches.map((z) => z.names)).toEqual([['y']]);
    r2.batches[0]!.answer();
    await tick();
    expect(r2.batches.map((z) => z.names)).toEqual([['y'], ['older', 'younger']]);
    r2.batches[1]!.answer();
    expect(await Promise.all([y, older, younger])).toEqual(['Y', 'OLDER', 'YOUNGER']);
  });

  it('keeps an item that fails on its own out of the others: outcomes are per item', async () => {
    const r = manualRun();
    const b = batcher(r);
    const blocker = b.submit(item('x', ['name:x']));
    const [a, bad, c] = ['a', 'bad', 'c'].map((n) => b.submit(item(n, [`name:${n}`])));
    await tick();
    r.batches[0]!.answer();
    await tick();
    r.batches[1]!.answer([
      { kind: 'done', value: 'A' },
      { kind: 'failed', error: new Error('name taken') },
      { kind: 'done', value: 'C' },
    ]);
    expect(await blocker).toBe('X');
    expect(await a).toBe('A');
    await expect(bad).rejects.toThrow('name taken');
    expect(await c).toBe('C');
  });

  it('runs every item of a batch that threw again alone, so only the culprit sees the error', async () => {
    const r = manualRun();
    const b = batcher(r, 4);
    const blocker = b.submit(item('x', ['name:x'], ['owner:1']));
    await tick();
    const [a, bad, c] = ['a', 'bad', 'c'].map((n) => b.submit(item(n, [`name:${n}`], ['owner:1'])));
    const badError = bad!.catch((e: unknown) => e);
    await tick();
    r.batches[0]!.answer();
    await tick();
    expect(r.batches[1]!.names).toEqual(['a', 'bad', 'c']);
    r.batches[1]!.fail(new Error('deadlock detected'));
    await tick();
    // Alone now, and one at a time: they share owner 1.
    expect(r.batches.slice(2).map((x) => x.names)).toEqual([['a']]);
    r.batches[2]!.answer();
    await tick();
    expect(r.batches.slice(2).map((x) => x.names)).toEqual([['a'], ['bad']]);
    r.batches[3]!.fail(new Error('constraint violated'));
    await tick();
    expect(r.batches.slice(2).map((x) => x.names)).toEqual([['a'], ['bad'], ['c']]);
    r.batches[4]!.answer();
    expect(await blocker).toBe('X');
    expect(await a).toBe('A');
    expect(await badError).toEqual(new Error('constraint violated'));
    expect(await c).toBe('C');
  });

  it('fails a lone item whose run throws at once', async () => {
    const b = new KeyedBatcher<Item, string>(
      (i) => ({ own: i.own, shared: i.shared }),
      () => {
        throw new Error('no connection');
      },
    );
    await expect(b.submit(item('a', ['name:a']))).rejects.toThrow('no connection');
  });

  it('queues an item again in its place, under the keys it names now', async () => {
    const r = manualRun();
    const b = batcher(r);
    const blocker = b.submit(item('x', ['name:x']));
    const regrouped = item('a', ['name:a'], ['owner:1']);
    const a = b.submit(regrouped);
    await tick();
    r.batches[0]!.answer();
    await tick();
    expect(r.batches[1]!.names).toEqual(['a']);
    const later = b.submit(item('b', ['name:b'], ['group:ops']));
    regrouped.shared = ['owner:1', 'group:ops'];
    r.batches[1]!.answer([{ kind: 'again' }]);
    await tick();
    // a runs again, before b, and they share group:ops now: together, a first.
    expect(r.batches[2]!.names).toEqual(['a', 'b']);
    r.batches[2]!.answer();
    expect(await Promise.all([blocker, a, later])).toEqual(['X', 'A', 'B']);
  });

  it('keeps to its batch and in-flight limits', async () => {
    const r = manualRun();
    const b = batcher(r, 2, 3);
    const all = Array.from({ length: 9 }, (_, i) => b.submit(item(`i${i}`, [`name:${i}`])));
    await tick();
    // Submitted while slots were free: the first two run alone at once; the rest queue.
    expect(r.batches.map((x) => x.names)).toEqual([['i0'], ['i1']]);
    r.batches[0]!.answer();
    await tick();
    // One slot freed: one batch of at most three.
    expect(r.batches.map((x) => x.names)).toEqual([['i0'], ['i1'], ['i2', 'i3', 'i4']]);
    r.batches[1]!.answer();
    r.batches[2]!.answer();
    await tick();
    expect(r.batches.map((x) => x.names.length)).toEqual([1, 1, 3, 3, 1]);
    r.batches[3]!.answer();
    r.batches[4]!.answer();
    expect(await Promise.all(all)).toEqual(Array.from({ length: 9 }, (_, i) => `I${i}`));
  });
});
