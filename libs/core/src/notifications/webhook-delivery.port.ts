import { type ApprovalEventName } from './approval-events';

export const DELIVERY_STATUSES = ['pending', 'retrying', 'delivered', 'failed'] as const;
/**
 * `pending`: not tried yet; `retrying`: tried, failed, tried again at `nextAttemptAt`;
 * `delivered`: a 2xx; `failed`: gave up after the last attempt (an operator may retry it).
 */
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** One event for one subscription: the delivery log's row. */
export interface WebhookDeliveryRecord {
  id: string;
  eventId: string;
  event: ApprovalEventName;
  subscription: string;
  requestId: string | null;
  payload: Record<string, unknown>;
  status: DeliveryStatus;
  attempts: number;
  /** HTTP status of the last attempt; null when it got no answer (refused, timed out). */
  lastStatus: number | null;
  lastError: string | null;
  lastAttemptAt: Date | null;
  nextAttemptAt: Date | null;
  deliveredAt: Date | null;
  createdAt: Date;
}

export interface NewWebhookDelivery {
  eventId: string;
  event: ApprovalEventName;
  subscription: string;
  requestId: string | null;
  payload: Record<string, unknown>;
  /** When the change happened: the first attempt is due then (the domain's clock, not the database's). */
  at: Date;
}

/** Writes deliveries in the caller's transaction, beside the state change they report. */
export interface WebhookDeliveryWriter {
  insert(rows: readonly NewWebhookDelivery[]): Promise<void>;
}

export interface DeliveryFilter {
  status?: DeliveryStatus | undefined;
  event?: ApprovalEventName | undefined;
  subscription?: string | undefined;
  requestId?: string | undefined;
  /** Opaque cursor from the previous page. */
  cursor?: string | undefined;
  limit: number;
}

export interface DeliveryAttempt {
  status: DeliveryStatus;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  lastAttemptAt: Date;
  nextAttemptAt: Date | null;
  deliveredAt: Date | null;
}

/** The sender's and the log's view of the deliveries table. */
export interface WebhookDeliveryStore {
  /**
   * Claims up to `limit` due rows (pending or retrying, next attempt at or before `now`) by
   * moving their next attempt to `leaseUntil`, skipping rows another sender is claiming. No
   * transaction stays open during the call; a sender that dies leaves the row due again
   * once the lease passes.
   */
  claimDue(now: Date, leaseUntil: Date, limit: number): Promise<WebhookDeliveryRecord[]>;
  /** Claims one row whatever its status except delivered (an operator's retry). */
  claim(id: string, leaseUntil: Date): Promise<WebhookDeliveryRecord | null>;
  record(id: string, attempt: DeliveryAttempt): Promise<void>;
  list(filter: DeliveryFilter): Promise<{ items: WebhookDeliveryRecord[]; nextCursor?: string }>;
  get(id: string): Promise<WebhookDeliveryRecord | null>;
}
