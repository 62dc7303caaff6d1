import { describe, expect, it } from 'vitest';
import { systemClock, silentLogger } from '../ports';
import { type HeartbeatBeat, HeartbeatBuffer, type HeartbeatStore } from './heartbeat';

class MemoryBeats implements HeartbeatStore {
  readonly batches: HeartbeatBeat[][] = [];
  fail = false;
  recordBeats(beats: readonly HeartbeatBeat[]): Promise<number> {
    if (this.fail) return Promise.reject(new Error('database down'));
    this.batches.push([...beats]);
    return Promise.resolve(beats.length);
  }
}

const options = { flushIntervalMs: 250, maxBatch: 2, timeouts: { cattleS: 180, petS: 180 } };

describe('HeartbeatBuffer', () => {
  it('coalesces beats per instance and writes them in batches', async () => {
    const store = new MemoryBeats();
    const buffer = new HeartbeatBuffer(store, systemClock, silentLogger, options);
    buffer.beat('a', { seq: 1 });
    buffer.beat('a', { seq: 2 });
    buffer.beat('b');
    buffer.beat('c');
    expect(buffer.size).toBe(3);
    expect(await buffer.flush()).toBe(3);
    expect(store.batches.map((b) => b.map((x) => x.instanceId))).toEqual([['a', 'b'], ['c']]);
    expect(store.batches[0]![0]!.status).toEqual({ seq: 2 });
    expect(buffer.accepted).toBe(4);
    expect(await buffer.flush()).toBe(0);
  });

  it('keeps a failed batch for the next flush without overwriting newer beats', async () => {
    const store = new MemoryBeats();
    const buffer = new HeartbeatBuffer(store, systemClock, silentLogger, options);
    buffer.beat('a', { seq: 1 });
    store.fail = true;
    await expect(buffer.flush()).rejects.toThrow('database down');
    buffer.beat('b');
    store.fail = false;
    await buffer.stop();
    expect(
      store.batches
        .flat()
        .map((x) => x.instanceId)
        .sort(),
    ).toEqual(['a', 'b']);
  });

  it('flushes on its own timer', async () => {
    const store = new MemoryBeats();
    const buffer = new HeartbeatBuffer(store, systemClock, silentLogger, { ...options, flushIntervalMs: 10 });
    buffer.start();
    buffer.beat('a');
    await new Promise((r) => setTimeout(r, 50));
    await buffer.stop();
    expect(store.batches.flat().map((x) => x.instanceId)).toEqual(['a']);
  });
});
