import { type Clock } from '../ports';
import { signTimestamped, type WebhookPoster } from '../approvals/step-runners';
import { type Deregistrar, type DeregistrationEvent } from './deregistrar.port';

export interface WebhookDeregistrarOptions {
  name: string;
  url: string;
  /** HMAC-SHA256 key; the receiver recomputes the signature over `<timestamp>.<body>`. */
  secret: string;
  timeoutMs: number;
}

/**
 * A signed POST of the event. Header `X-Norm-Signature: t=<unix s>,v1=<hex hmac>` over
 * `<t>.<body>` (the Stripe scheme), so a receiver can refuse replays older than its window.
 * 2xx is removed; 404 and 410 mean the receiver does not know the instance: already absent.
 */
export class WebhookDeregistrar implements Deregistrar {
  readonly name: string;

  constructor(
    private readonly options: WebhookDeregistrarOptions,
    private readonly http: WebhookPoster,
    private readonly clock: Clock,
  ) {
    this.name = `webhook:${options.name}`;
  }

  sign(body: string, t: number): string {
    return signTimestamped(this.options.secret, body, t);
  }

  async deregister(event: DeregistrationEvent): Promise<{ outcome: 'removed' | 'absent' }> {
    const body = JSON.stringify(event);
    const t = Math.floor(this.clock.now().getTime() / 1000);
    const res = await this.http.post(
      this.options.url,
      body,
      {
        'content-type': 'application/json',
        'x-norm-event': event.event,
        'x-norm-signature': this.sign(body, t),
        // The receiver may dedupe on it: a retry carries the same key.
        'idempotency-key': `deregister:${event.instanceId}`,
      },
      this.options.timeoutMs,
    );
    if (res.status >= 200 && res.status < 300) return { outcome: 'removed' };
    if (res.status === 404 || res.status === 410) return { outcome: 'absent' };
    throw new Error(`webhook answered ${res.status}: ${res.body.slice(0, 500)}`);
  }

  /** A signed `norm.ping`: proves reachability and that the receiver accepts the signature. */
  async testConnection(): Promise<{ ok: boolean; detail: string }> {
    const body = JSON.stringify({ event: 'norm.ping' });
    const t = Math.floor(this.clock.now().getTime() / 1000);
    try {
      const res = await this.http.post(
        this.options.url,
        body,
        {
          'content-type': 'application/json',
          'x-norm-event': 'norm.ping',
          'x-norm-signature': this.sign(body, t),
        },
        this.options.timeoutMs,
      );
      return { ok: res.status >= 200 && res.status < 300, detail: `HTTP ${res.status}` };
    } catch (err) {
      return { ok: false, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  describe(): Record<string, unknown> {
    const u = new URL(this.options.url);
    return {
      kind: 'webhook',
      name: this.name,
      url: `${u.protocol}//${u.host}${u.pathname}`,
      signed: 'hmac-sha256',
    };
  }
}
