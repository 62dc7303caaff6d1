import { describe, expect, it } from 'vitest';
import { FifoGate } from './fifo-gate';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('FifoGate', () => {
  it('runs at most its capacity at once and lets the others in by arrival', async () => {
    const gate = new FifoGate(2);
    const started: number[] = [];
    const release = new Map<number, () => void>();
    const runs = [0, 1, 2, 3, 4].map((i) =>
      gate.run(async () => {
        started.push(i);
        await new Promise<void>((resolve) => release.set(i, resolve));
        return i;
      }),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    expect(gate.queued).toBe(3);
    release.get(1)!();
    await tick();
    expect(started).toEqual([0, 1, 2]);
    // A newcomer while one waits does not overtake it.
    const late = gate.run(() => Promise.resolve('late'));
    release.get(0)!();
    await tick();
    expect(started).toEqual([0, 1, 2, 3]);
    for (const i of [2, 3]) release.get(i)!();
    await tick();
    expect(started).toEqual([0, 1, 2, 3, 4]);
    release.get(4)!();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4]);
    expect(await late).toBe('late');
    expect(gate.queued).toBe(0);
  });

  it('a failing run still lets the next one in', async () => {
    const gate = new FifoGate(1);
    const failed = gate.run(() => Promise.reject(new Error('boom')));
    const next = gate.run(() => Promise.resolve('next'));
    await expect(failed).rejects.toThrow('boom');
    expect(await next).toBe('next');
  });

  it('a place given up twice is given up once', async () => {
    const gate = new FifoGate(1);
    const leave = await gate.enter();
    const order: string[] = [];
    const second = gate.enter().then((l) => (order.push('second'), l));
    const third = gate.enter().then((l) => (order.push('third'), l));
    leave();
    leave();
    await tick();
    // The second leave handed nothing on: the third still waits for the second's place.
    expect(order).toEqual(['second']);
    (await second)();
    await tick();
    expect(order).toEqual(['second', 'third']);
    (await third)();
    expect(gate.queued).toBe(0);
  });

  it('refuses a capacity below one', () => {
    expect(() => new FifoGate(0)).toThrow(RangeError);
  });
});
