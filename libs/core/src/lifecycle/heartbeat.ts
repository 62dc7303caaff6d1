import { type NormConfig } from '../config';
import { type Clock, type Logger } from '../ports';

/** What an instance may say about itself along with a beat; all optional, never trusted for decisions. */
export interface HeartbeatStatus {
  agentVersion?: string;
  uptimeS?: number;
  seq?: number;
}

export interface HeartbeatBeat {
  instanceId: string;
  at: Date;
  status?: HeartbeatStatus;
}

/** Heartbeat timeouts when an instance has no override of its own, in seconds. */
export interface HeartbeatTimeouts {
  cattleS: number;
  petS: number;
}

/** What one instance's own timeout may be; it comes from requesters and operators, not the site config. */
export interface HeartbeatTimeoutBounds {
  minS: number;
  maxS: number;
}

/** The settings' defaults (NORM_HEARTBEAT_TIMEOUT_MIN/_MAX), whose reasons live with the settings. */
export const DEFAULT_HEARTBEAT_TIMEOUT_BOUNDS: HeartbeatTimeoutBounds = { minS: 30, maxS: 86_400 };

/** Per-class timeouts from config: each class's own setting, else `NORM_HEARTBEAT_TIMEOUT`. */
export function heartbeatTimeoutsOf(
  config: Pick<NormConfig, 'heartbeatTimeoutMs' | 'heartbeatTimeoutCattleMs' | 'heartbeatTimeoutPetMs'>,
): HeartbeatTimeouts {
  return {
    cattleS: Math.round((config.heartbeatTimeoutCattleMs ?? config.heartbeatTimeoutMs) / 1000),
    petS: Math.round((config.heartbeatTimeoutPetMs ?? config.heartbeatTimeoutMs) / 1000),
  };
}

export function heartbeatTimeoutBoundsOf(
  config: Pick<NormConfig, 'heartbeatTimeoutMinMs' | 'heartbeatTimeoutMaxMs'>,
): HeartbeatTimeoutBounds {
  return {
    minS: Math.ceil(config.heartbeatTimeoutMinMs / 1000),
    maxS: Math.floor(config.heartbeatTimeoutMaxMs / 1000),
  };
}

/** Both, as InstanceService takes them. */
export function heartbeatOptionsOf(
  config: Parameters<typeof heartbeatTimeoutsOf>[0] & Parameters<typeof heartbeatTimeoutBoundsOf>[0],
): { timeouts: HeartbeatTimeouts; bounds: HeartbeatTimeoutBounds } {
  return { timeouts: heartbeatTimeoutsOf(config), bounds: heartbeatTimeoutBoundsOf(config) };
}

/**
 * Why a per-instance timeout (in ms, as parsed from `"5m"`) is refused, or null: it is stored
 * in whole seconds, and must lie within the site's bounds.
 */
export function heartbeatTimeoutProblem(ms: number, bounds: HeartbeatTimeoutBounds): string | null {
  if (ms % 1000 !== 0) return 'a whole number of seconds';
  if (ms / 1000 < bounds.minS) return `at least ${bounds.minS}s`;
  if (ms / 1000 > bounds.maxS) return `at most ${bounds.maxS}s`;
  return null;
}

export interface HeartbeatStore {
  /**
   * Writes last-seen and deadline (last seen + the instance's timeout, else its class's) for
   * every beat in one statement. Unknown or finished instances are skipped; returns rows written.
   */
  recordBeats(beats: readonly HeartbeatBeat[], timeouts: HeartbeatTimeouts): Promise<number>;
}

export interface HeartbeatBufferOptions {
  /** How long a beat may wait before it is durable; far below any timeout, large enough to batch. */
  flushIntervalMs: number;
  /** Beats per statement; a bigger buffer flushes in several. */
  maxBatch: number;
  timeouts: HeartbeatTimeouts;
}

/**
 * Heartbeat intake without a database write per request. Beats are coalesced per instance
 * (the latest wins: only last-seen matters) and written together every `flushIntervalMs`.
 * A crash loses at most one interval of beats, which costs nothing: the deadline is minutes
 * away and the next beat arrives long before it.
 */
export class HeartbeatBuffer {
  private pending = new Map<string, HeartbeatBeat>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<number> | null = null;
  /** Beats accepted since start, for status and the bench. */
  accepted = 0;

  constructor(
    private readonly store: HeartbeatStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly options: HeartbeatBufferOptions,
  ) {}

  beat(instanceId: string, status?: HeartbeatStatus): void {
    this.accepted++;
    this.pending.set(instanceId, { instanceId, at: this.clock.now(), status });
  }

  get size(): number {
    return this.pending.size;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      void this.flush().catch(() => undefined);
    }, this.options.flushIntervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is left, so a graceful shutdown loses nothing. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  /** Writes every pending beat; one flush at a time, a failed batch is put back for the next. */
  async flush(): Promise<number> {
    if (this.flushing) await this.flushing.catch(() => undefined);
    if (this.pending.size === 0) return 0;
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = this.write([...batch.values()]).catch((err: unknown) => {
      // Put back only what no newer beat replaced, so nothing goes backwards.
      for (const [id, beat] of batch) if (!this.pending.has(id)) this.pending.set(id, beat);
      this.log.error('heartbeat flush failed', {
        beats: batch.size,
        error: err instanceof Error ? err.message : String(err),
      });
      throw err;
    });
    try {
      return await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  private async write(beats: HeartbeatBeat[]): Promise<number> {
    let written = 0;
    for (let i = 0; i < beats.length; i += this.options.maxBatch) {
      written += await this.store.recordBeats(
        beats.slice(i, i + this.options.maxBatch),
        this.options.timeouts,
      );
    }
    return written;
  }
}
