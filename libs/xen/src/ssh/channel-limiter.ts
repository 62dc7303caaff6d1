/**
 * A FIFO counting semaphore for SSH channels on one connection. sshd refuses channel
 * opens beyond its MaxSessions (10 by default), and a refused open is indistinguishable
 * from a broken host to the caller, so commands queue here instead of failing there.
 * Waiters leave the queue when their own deadline passes (via an AbortSignal), so a
 * queued command never outlives its timeout.
 */
export class ChannelLimiter {
  private active = 0;
  private readonly waiters: Array<{
    grant: (release: () => void) => void;
    fail: (err: unknown) => void;
  }> = [];

  constructor(private readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
  }

  get inUse(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiters.length;
  }

  /** Resolves with a release function once a slot is free; release is idempotent. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(toError(signal.reason));
    if (this.active < this.capacity && this.waiters.length === 0) {
      this.active += 1;
      return Promise.resolve(this.releaser());
    }
    return new Promise<() => void>((resolve, reject) => {
      const waiter = {
        grant: (release: () => void): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
        fail: (err: unknown): void => {
          signal?.removeEventListener('abort', onAbort);
          reject(toError(err));
        },
      };
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(toError(signal?.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Fails every queued waiter (shutdown); slots already granted stay granted until released. */
  rejectAll(err: unknown): void {
    for (const waiter of this.waiters.splice(0)) waiter.fail(err);
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter, so a newcomer can never overtake the queue.
      if (next) next.grant(this.releaser());
      else this.active -= 1;
    };
  }
}

function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}
