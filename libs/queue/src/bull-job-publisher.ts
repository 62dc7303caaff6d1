import { isJobName, JOB_CATALOGUE, type JobPublisher, type QueueName } from '@norm/core';
import { Queue } from 'bullmq';
import { type Redis } from 'ioredis';

/** How long finished jobs stay in Redis: while they exist, a re-publish of the same id is ignored. */
export const KEEP_COMPLETED_S = 24 * 3600;
export const KEEP_FAILED_S = 7 * 24 * 3600;

export class BullJobPublisher implements JobPublisher {
  private readonly queues = new Map<QueueName, Queue>();

  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
  ) {}

  async publish(
    messages: ReadonlyArray<{ name: string; jobId: string; payload: Record<string, unknown> }>,
  ): Promise<void> {
    const byQueue = new Map<
      QueueName,
      Array<{ name: string; jobId: string; payload: Record<string, unknown> }>
    >();
    for (const m of messages) {
      if (!isJobName(m.name)) throw new Error(`outbox holds a job not in the catalogue: ${m.name}`);
      const queue = JOB_CATALOGUE[m.name].queue;
      byQueue.set(queue, [...(byQueue.get(queue) ?? []), m]);
    }
    for (const [queueName, batch] of byQueue) {
      await this.queue(queueName).addBulk(
        batch.map((m) => ({
          name: m.name,
          data: m.payload,
          opts: {
            jobId: m.jobId,
            attempts: 5,
            backoff: { type: 'exponential', delay: 2_000 },
            removeOnComplete: { age: KEEP_COMPLETED_S },
            removeOnFail: { age: KEEP_FAILED_S },
          },
        })),
      );
    }
  }

  queue(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.connection, prefix: this.prefix });
      this.queues.set(name, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
