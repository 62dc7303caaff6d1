import { type HostSlots } from './host-slots.port';

/**
 * Caps concurrent create/destroy work per host and overall. A dom0 running several `xl create`
 * at once serialises on its toolstack lock anyway and then times out the later ones; a cap of 2
 * keeps one in flight while the next prepares. FIFO, so no host's work starves.
 *
 * In-process only: with several workers the effective per-host cap would be (workers × cap), so
 * the worker uses PgHostSlots (libs/inventory), which holds the caps across processes. This one
 * serves where one process is the whole system: unit tests and the floor of bench/provision.
 */
export class HostLimiter implements HostSlots {
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();
  private globalActive = 0;
  private readonly globalWaiting: Array<() => void> = [];

  constructor(
    private readonly defaultPerHost: number,
    private readonly globalCap: number,
  ) {}

  async run<T>(hostId: string, perHost: number | undefined, work: () => Promise<T>): Promise<T> {
    const cap = Math.max(1, perHost ?? this.defaultPerHost);
    await this.acquireHost(hostId, cap);
    try {
      await this.acquireGlobal();
      try {
        return await work();
      } finally {
        this.releaseGlobal();
      }
    } finally {
      this.releaseHost(hostId);
    }
  }

  /** For tests and metrics. */
  inFlight(hostId: string): number {
    return this.active.get(hostId) ?? 0;
  }

  private acquireHost(hostId: string, cap: number): Promise<void> {
    const n = this.active.get(hostId) ?? 0;
    if (n < cap) {
      this.active.set(hostId, n + 1);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const queue = this.waiting.get(hostId) ?? [];
      queue.push(() => {
        this.active.set(hostId, (this.active.get(hostId) ?? 0) + 1);
        resolve();
      });
      this.waiting.set(hostId, queue);
    });
  }

  private releaseHost(hostId: string): void {
    this.active.set(hostId, (this.active.get(hostId) ?? 1) - 1);
    const next = this.waiting.get(hostId)?.shift();
    if (next) next();
    else if (this.active.get(hostId) === 0) {
      this.active.delete(hostId);
      this.waiting.delete(hostId);
    }
  }

  private acquireGlobal(): Promise<void> {
    if (this.globalActive < this.globalCap) {
      this.globalActive++;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.globalWaiting.push(() => {
        this.globalActive++;
        resolve();
      }),
    );
  }

  private releaseGlobal(): void {
    this.globalActive--;
    this.globalWaiting.shift()?.();
  }
}
