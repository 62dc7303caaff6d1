import { type ApprovalBacklog, type DeliveryResult, type NormMetrics, type StepOutcome } from '@norm/core';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

const HOUR = 3600;
const DAY = 24 * HOUR;
/**
 * Approval steps take from nothing (automatic ones) to days (a team on leave): buckets from a
 * second to two weeks, so both "quota costs nothing" and "security takes 3 days" show.
 */
const STEP_BUCKETS = [1, 60, 300, 900, HOUR, 4 * HOUR, 12 * HOUR, DAY, 2 * DAY, 4 * DAY, 7 * DAY, 14 * DAY];
/** Request to running: a cattle VM in tens of seconds, a pet after days of sign-offs. */
const RUNNING_BUCKETS = [10, 30, 60, 120, 300, 900, HOUR, 4 * HOUR, DAY, 3 * DAY, 7 * DAY, 14 * DAY];

/**
 * The process's Prometheus registry: Node's default process metrics plus Norm's own. Each
 * process (api, worker) has one and serves it itself, as Prometheus expects; sums across
 * processes are the query's job (`sum by (le, step) (rate(…_bucket[1h]))`).
 */
export class PromMetrics implements NormMetrics {
  readonly registry = new Registry();
  private readonly stepSeconds: Histogram<'step' | 'outcome'>;
  private readonly runningSeconds: Histogram<'lifecycle_class'>;
  private readonly timers: Counter<'step' | 'action'>;
  private readonly deliveries: Counter<'subscription' | 'result'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.stepSeconds = new Histogram({
      name: 'norm_approval_step_duration_seconds',
      help: 'Time an approval step waited from being reached to its decision (0 for steps decided at once).',
      labelNames: ['step', 'outcome'],
      buckets: STEP_BUCKETS,
      registers: [this.registry],
    });
    this.runningSeconds = new Histogram({
      name: 'norm_request_to_running_seconds',
      help: 'Time from a VM request being created to its instance running.',
      labelNames: ['lifecycle_class'],
      buckets: RUNNING_BUCKETS,
      registers: [this.registry],
    });
    this.timers = new Counter({
      name: 'norm_approval_timeouts_total',
      help: 'Approval step timers fired, by step and action (remind, escalate, expire, approve).',
      labelNames: ['step', 'action'],
      registers: [this.registry],
    });
    this.deliveries = new Counter({
      name: 'norm_webhook_delivery_attempts_total',
      help: 'Notification webhook attempts by subscription and result (delivered, retry, failed = gave up).',
      labelNames: ['subscription', 'result'],
      registers: [this.registry],
    });
  }

  approvalStepDecided(step: string, outcome: StepOutcome, seconds: number): void {
    this.stepSeconds.observe({ step, outcome }, seconds);
  }

  requestRunning(lifecycleClass: 'cattle' | 'pet', seconds: number): void {
    this.runningSeconds.observe({ lifecycle_class: lifecycleClass }, seconds);
  }

  approvalTimerFired(step: string, action: string): void {
    this.timers.inc({ step, action });
  }

  webhookAttempt(subscription: string, result: DeliveryResult): void {
    this.deliveries.inc({ subscription, result });
  }

  /** Gauges of what waits now; only the API registers them, so the backlog is not counted twice. */
  addApprovalBacklog(read: () => Promise<ApprovalBacklog[]>): void {
    // Each gauge reads on its own: a GROUP BY over the pending rows, cheap next to a 15 s scrape.
    new Gauge({
      name: 'norm_approval_steps_waiting',
      help: 'Steps of pending requests waiting now, by step.',
      labelNames: ['step'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const b of await read()) this.set({ step: b.step }, b.waiting);
      },
    });
    new Gauge({
      name: 'norm_approval_oldest_wait_seconds',
      help: 'How long the longest-waiting step of each name has waited.',
      labelNames: ['step'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const b of await read()) this.set({ step: b.step }, b.oldestSeconds);
      },
    });
  }

  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
