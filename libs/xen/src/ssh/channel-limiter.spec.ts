import { describe, expect, it } from 'vitest';
import { ChannelLimiter } from './channel-limiter';

describe('ChannelLimiter', () => {
  it('grants up to capacity at once and hands freed slots to waiters in FIFO order', async () => {
    const limiter = new ChannelLimiter(2);
    const a = await limiter.acquire();
    await limiter.acquire();
    const order: string[] = [];
    const c = limiter.acquire().then((release) => (order.push('c'), release));
    const d = limiter.acquire().then((release) => (order.push('d'), release));
    expect(limiter.queued).toBe(2);
    a();
    a(); // idempotent: a second call must not free a second slot
    (await c)();
    await d;
    expect(order).toEqual(['c', 'd']);
    expect(limiter.inUse).toBe(2);
  });

  it('drops a waiter whose signal aborts, without consuming a slot', async () => {
    const limiter = new ChannelLimiter(1);
    const held = await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    controller.abort(new Error('deadline'));
    await expect(waiting).rejects.toThrow('deadline');
    expect(limiter.queued).toBe(0);
    held();
    expect(limiter.inUse).toBe(0);
  });

  it('rejectAll fails every waiter', async () => {
    const limiter = new ChannelLimiter(1);
    await limiter.acquire();
    const waiting = limiter.acquire();
    limiter.rejectAll(new Error('closed'));
    await expect(waiting).rejects.toThrow('closed');
  });
});
