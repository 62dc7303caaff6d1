import { type ReaperControl, type ReaperControlState, type ReaperStatusView } from '@norm/core';
import { type Redis } from 'ioredis';

/**
 * Operator controls and the reaper's published status in Redis, so any API replica can pause
 * or reset the reaper wherever it leads. A reset is a counter, not a flag: the leading reaper
 * acts once per new value and a second click is not lost behind the first.
 *
 * Pause survives a Redis flush as "not paused", which is acceptable only because every brake
 * still applies; the breaker and startup grace do not depend on it.
 */
export class RedisReaperControl implements ReaperControl {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(name: string): string {
    return `${this.prefix}lifecycle:${name}`;
  }

  async read(): Promise<ReaperControlState> {
    const [paused, seq, by] = await this.redis.mget(
      this.key('paused'),
      this.key('reset-seq'),
      this.key('reset-by'),
    );
    return { paused: paused === '1', resetSeq: Number(seq ?? 0), resetBy: by ?? null };
  }

  async setPaused(paused: boolean): Promise<void> {
    await this.redis.set(this.key('paused'), paused ? '1' : '0');
  }

  async requestReset(actor: string): Promise<void> {
    await this.redis.multi().set(this.key('reset-by'), actor).incr(this.key('reset-seq')).exec();
  }

  /** Expires after a few minutes: a status nobody refreshes means no reaper is leading. */
  async publishStatus(status: ReaperStatusView): Promise<void> {
    await this.redis.set(this.key('status'), JSON.stringify(status), 'EX', 300);
  }

  async readStatus(): Promise<ReaperStatusView | null> {
    const raw = await this.redis.get(this.key('status'));
    return raw ? (JSON.parse(raw) as ReaperStatusView) : null;
  }
}
