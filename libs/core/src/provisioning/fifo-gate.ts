/**
 * At most `capacity` callers run at once; the others wait in arrival order. Used where many
 * jobs start together and each needs a few short database transactions: run a handful at a
 * time, first come first served, and the first jobs finish their start in milliseconds instead
 * of all of them advancing in lockstep through one connection pool.
 */
export class FifoGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    const leave = await this.enter();
    try {
      return await work();
    } finally {
      leave();
    }
  }

  /**
   * Waits for a place and returns what gives it up, for a caller whose gated part does not
   * fit in one function. Giving it up twice is harmless.
   */
  async enter(): Promise<() => void> {
    if (this.running < this.capacity) this.running++;
    // The releaser hands its place over, so `running` never dips and lets a newcomer overtake.
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    };
  }

  /** Callers waiting for their turn, for tests. */
  get queued(): number {
    return this.waiting.length;
  }
}
