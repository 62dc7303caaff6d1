import { describe, expect, it } from 'vitest';
import { HostLimiter } from './host-limiter';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('host limiter', () => {
  it('never runs more than the per-host cap at once, and honours a host override', async () => {
    const limiter = new HostLimiter(2, 100);
    let peakA = 0;
    let peakB = 0;
    const job = (host: string, cap?: number) =>
      limiter.run(host, cap, async () => {
        if (host === 'a') peakA = Math.max(peakA, limiter.inFlight('a'));
        else peakB = Math.max(peakB, limiter.inFlight('b'));
        await tick();
      });
    await Promise.all([
      ...Array.from({ length: 10 }, () => job('a')),
      ...Array.from({ length: 10 }, () => job('b', 1)),
    ]);
    expect(peakA).toBe(2);
    expect(peakB).toBe(1);
    expect(limiter.inFlight('a')).toBe(0);
  });

  it('applies the global cap across hosts', async () => {
    const limiter = new HostLimiter(5, 3);
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        limiter.run(`h${i % 4}`, undefined, async () => {
          running++;
          peak = Math.max(peak, running);
          await tick();
          running--;
        }),
      ),
    );
    expect(peak).toBe(3);
  });

  it('releases the slot when work fails', async () => {
    const limiter = new HostLimiter(1, 1);
    await expect(limiter.run('a', undefined, () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    await expect(limiter.run('a', undefined, () => Promise.resolve(7))).resolves.toBe(7);
  });
});
