import { authorize } from '../identity/authorization';
import { type ActingContext } from '../identity/identity.service';
import { actorOf } from '../identity/principal';
import { NotFound } from '../errors';
import { type AuditEventInput } from '../audit';
import { type NormConfig } from '../config';
import { type Clock, type Logger, type NormMetrics, noMetrics } from '../ports';
import { signTimestamped, type WebhookPoster } from '../approvals/step-runners';
import {
  type DeliveryFilter,
  type WebhookDeliveryRecord,
  type WebhookDeliveryStore,
} from './webhook-delivery.port';
import { type WebhookSubscription } from './webhook-subscriptions';

export interface WebhookDeliveryDeps {
  store: WebhookDeliveryStore;
  subscriptions: readonly WebhookSubscription[];
  http: WebhookPoster;
  clock: Clock;
  log: Logger;
  audit: (event: AuditEventInput) => Promise<unknown>;
  metrics?: NormMetrics;
}

export interface WebhookDeliveryOptions {
  timeoutMs: number;
  /** Attempts before a delivery is marked failed. */
  maxAttempts: number;
  /** First retry delay; doubles per attempt up to `maxBackoffMs`. */
  baseBackoffMs: number;
  maxBackoffMs: number;
}

/** 10 s doubling to 1 h: quick after a blip, one call an hour to a receiver that is down. */
export function webhookDeliveryOptions(config: NormConfig): WebhookDeliveryOptions {
  return {
    timeoutMs: config.webhookTimeoutMs,
    maxAttempts: config.webhookMaxAttempts,
    baseBackoffMs: 10_000,
    maxBackoffMs: 3_600_000,
  };
}

/** What a receiver's answer body may add to the log: enough to see why, not a page of HTML. */
const MAX_ERROR = 500;

/**
 * Sends recorded notifications. Any number of senders may run (every worker does): a row
 * is claimed by moving its next attempt past the call's timeout, so two senders never hold
 * it at once and one that dies mid-call leaves it due again. Every retry carries the same
 * body and Idempotency-Key, so a receiver that saw it before can drop the repeat.
 */
export class WebhookDeliveryService {
  private readonly byName: ReadonlyMap<string, WebhookSubscription>;
  private readonly metrics: NormMetrics;

  constructor(
    private readonly deps: WebhookDeliveryDeps,
    private readonly options: WebhookDeliveryOptions,
  ) {
    this.byName = new Map(deps.subscriptions.map((s) => [s.name, s]));
    this.metrics = deps.metrics ?? noMetrics;
  }

  /** One pass: claims due rows and sends them side by side (they are independent receivers). */
  async runDue(limit = 20): Promise<{ attempted: number; delivered: number }> {
    const now = this.deps.clock.now();
    const rows = await this.deps.store.claimDue(now, this.leaseUntil(now), limit);
    const results = await Promise.all(rows.map((r) => this.attempt(r)));
    return { attempted: rows.length, delivered: results.filter((r) => r === 'delivered').length };
  }

  list(
    ctx: ActingContext,
    filter: DeliveryFilter,
  ): Promise<{ items: WebhookDeliveryRecord[]; nextCursor?: string }> {
    authorize(ctx.subject, 'webhooks:read');
    return this.deps.store.list(filter);
  }

  /** Sends one delivery now, whatever its status but delivered. */
  async retry(ctx: ActingContext, id: string): Promise<WebhookDeliveryRecord> {
    authorize(ctx.subject, 'webhooks:write');
    const row = await this.deps.store.get(id);
    if (!row) throw new NotFound('webhook delivery', id);
    if (row.status === 'delivered') return row;
    const claimed = await this.deps.store.claim(id, this.leaseUntil(this.deps.clock.now()));
    if (!claimed) return row;
    await this.deps.audit({
      actor: actorOf(ctx.subject),
      action: 'webhook-delivery.retry',
      objectType: 'webhook-delivery',
      objectId: id,
      before: { status: row.status, attempts: row.attempts, lastError: row.lastError },
      requestId: ctx.requestId ?? null,
    });
    // Once, now; if it fails it is retried with backoff while attempts stay under the cap.
    await this.attempt(claimed, ctx.requestId ?? null);
    return (await this.deps.store.get(id)) ?? row;
  }

  private leaseUntil(now: Date): Date {
    // Past the call's own timeout, with room for the record to be written.
    return new Date(now.getTime() + this.options.timeoutMs + 30_000);
  }

  /** `requestId`: the operator's request when a resend runs inside one, for its log line. */
  private async attempt(
    row: WebhookDeliveryRecord,
    requestId: string | null = null,
  ): Promise<'delivered' | 'retry' | 'failed'> {
    const sub = this.byName.get(row.subscription);
    const attempts = row.attempts + 1;
    const at = this.deps.clock.now();
    let lastStatus: number | null = null;
    let error: string;
    try {
      if (!sub) throw new Error('the subscription is no longer configured');
      const body = JSON.stringify(row.payload);
      const t = Math.floor(at.getTime() / 1000);
      const res = await this.deps.http.post(
        sub.url,
        body,
        {
          'content-type': 'application/json',
          'x-norm-event': row.event,
          'x-norm-delivery': row.id,
          'x-norm-signature': signTimestamped(sub.secret, body, t),
          'idempotency-key': row.id,
        },
        this.options.timeoutMs,
      );
      lastStatus = res.status;
      if (res.status >= 200 && res.status < 300) {
        await this.deps.store.record(row.id, {
          status: 'delivered',
          attempts,
          lastStatus,
          lastError: null,
          lastAttemptAt: at,
          nextAttemptAt: null,
          deliveredAt: this.deps.clock.now(),
        });
        this.metrics.webhookAttempt(row.subscription, 'delivered');
        return 'delivered';
      }
      error = `HTTP ${res.status}: ${res.body.slice(0, MAX_ERROR)}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const giveUp = !sub || attempts >= this.options.maxAttempts;
    const delay = Math.min(this.options.baseBackoffMs * 2 ** (attempts - 1), this.options.maxBackoffMs);
    const nextAttemptAt = giveUp ? null : new Date(at.getTime() + delay);
    await this.deps.store.record(row.id, {
      status: giveUp ? 'failed' : 'retrying',
      attempts,
      lastStatus,
      lastError: error.slice(0, MAX_ERROR + 20),
      lastAttemptAt: at,
      nextAttemptAt,
      deliveredAt: null,
    });
    this.deps.log.warn('webhook delivery failed', {
      deliveryId: row.id,
      subscription: row.subscription,
      event: row.event,
      attempts,
      lastStatus,
      error,
      nextAttemptAt: nextAttemptAt?.toISOString() ?? null,
      ...(requestId === null ? {} : { requestId }),
    });
    this.metrics.webhookAttempt(row.subscription, giveUp ? 'failed' : 'retry');
    return giveUp ? 'failed' : 'retry';
  }
}
