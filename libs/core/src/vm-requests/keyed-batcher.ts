/** What a batch did with one of its items. */
export type BatchOutcome<R> =
  | { kind: 'done'; value: R }
  | { kind: 'failed'; error: unknown }
  /** Not decided: queue it again, in its place, under the keys it names now. */
  | { kind: 'again' };

/**
 * An item's keys. No key is ever held by two running batches. Within one batch, an `own` key
 * belongs to one item only, while a `shared` key may be held by several items: the batch runs
 * its items in order and accounts for the earlier ones itself.
 */
export interface BatchKeys {
  own: readonly string[];
  shared: readonly string[];
}

export interface KeyedBatcherLimits {
  /** Batches running at once. */
  maxInFlight: number;
  /** Items in one batch. */
  maxBatch: number;
  /**
   * Items a batch must hold to start while another runs (default 1). A lone item still goes
   * at once when nothing runs, but under load a second batch waits until it is worth its own
   * transaction, instead of every arrival taking a free slot alone.
   */
  minBatchAlongside?: number;
}

interface Entry<T, R> {
  item: T;
  /** Arrival order: an item queued again keeps its place. */
  seq: number;
  /** After its batch failed: run in a batch of its own, so its failure is its own. */
  alone: boolean;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs items in batches, never alongside a running batch that holds one of their keys, and
 * never two items with the same `own` key in one batch. Idle, an item goes out at once,
 * alone; while batches run, items queue, and the next batch takes every queued item whose
 * keys are free, oldest first (beside a running batch, only once they are
 * `minBatchAlongside`). An item never overtakes an older one that shares a key with
 * it, so items of one key run in arrival order, in the batch as across batches.
 *
 * VM requests are created this way (own keys: the name and the Idempotency-Key; shared: the
 * owner and the owner's groups): a batch is one transaction that holds its items' locks, and
 * one commit serves them all.
 *
 * A batch that throws is not the failure of every item in it: each item is run again in a
 * batch of its own, and only then does an error reach its caller.
 */
export class KeyedBatcher<T, R> {
  private readonly queue: Array<Entry<T, R>> = [];
  /** Keys of the running batches. */
  private readonly busy = new Set<string>();
  private inFlight = 0;
  private seq = 0;

  constructor(
    private readonly keysOf: (item: T) => BatchKeys,
    private readonly run: (items: T[]) => Promise<Array<BatchOutcome<R>>>,
    private readonly limits: KeyedBatcherLimits = { maxInFlight: 4, maxBatch: 64 },
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, seq: this.seq++, alone: false, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.limits.maxInFlight) {
      const batch = this.take();
      if (batch.length === 0) return;
      if (this.inFlight > 0 && batch.length < (this.limits.minBatchAlongside ?? 1)) {
        // Too few to run beside the others: back in their places, for the next pump.
        for (const entry of batch) this.requeue(entry, entry.alone);
        return;
      }
      this.dispatch(batch);
    }
  }

  /** The next batch, oldest first; what it leaves stays queued in order. */
  private take(): Array<Entry<T, R>> {
    const taken: Array<Entry<T, R>> = [];
    const kept: Array<Entry<T, R>> = [];
    // Own keys the batch holds, and every key of an older item left queued (a younger item must not pass it).
    const owned = new Set<string>();
    const passed = new Set<string>();
    let closed = false;
    for (const entry of this.queue) {
      const { own, shared } = this.keysOf(entry.item);
      const free =
        own.every((k) => !this.busy.has(k) && !passed.has(k) && !owned.has(k)) &&
        shared.every((k) => !this.busy.has(k) && !passed.has(k));
      if (!closed && free && (!entry.alone || taken.length === 0)) {
        taken.push(entry);
        for (const k of own) owned.add(k);
        if (entry.alone || taken.length >= this.limits.maxBatch) closed = true;
      } else {
        kept.push(entry);
        for (const k of [...own, ...shared]) passed.add(k);
      }
    }
    this.queue.splice(0, this.queue.length, ...kept);
    return taken;
  }

  private dispatch(batch: Array<Entry<T, R>>): void {
    const keys = new Set(
      batch.flatMap((e) => {
        const { own, shared } = this.keysOf(e.item);
        return [...own, ...shared];
      }),
    );
    for (const k of keys) this.busy.add(k);
    this.inFlight++;
    const items = batch.map((e) => e.item);
    // Through a promise, so a `run` that throws at once fails like one that rejects.
    void Promise.resolve()
      .then(() => this.run(items))
      .then(
        (settled) => {
          batch.forEach((entry, i) => {
            const outcome = settled[i];
            if (outcome === undefined) entry.reject(new Error('the batch returned no outcome for this item'));
            else if (outcome.kind === 'done') entry.resolve(outcome.value);
            else if (outcome.kind === 'failed') entry.reject(outcome.error);
            else this.requeue(entry, entry.alone);
          });
        },
        (error: unknown) => {
          if (batch.length === 1) batch[0]!.reject(error);
          else for (const entry of batch) this.requeue(entry, true);
        },
      )
      .finally(() => {
        for (const k of keys) this.busy.delete(k);
        this.inFlight--;
        this.pump();
      });
  }

  private requeue(entry: Entry<T, R>, alone: boolean): void {
    const at = this.queue.findIndex((e) => e.seq > entry.seq);
    this.queue.splice(at === -1 ? this.queue.length : at, 0, { ...entry, alone });
  }
}
