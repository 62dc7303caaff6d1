import { randomUUID } from 'node:crypto';
import { type ApprovalEvent } from './approval-events';
import { type NewWebhookDelivery, type WebhookDeliveryWriter } from './webhook-delivery.port';
import { wants, type WebhookSubscription } from './webhook-subscriptions';

export interface NotifiedRequest {
  id: string;
  name: string;
  ownerId: string;
  lifecycleClass: 'cattle' | 'pet';
  state: string;
}

/**
 * Turns approval events into delivery rows, one per event and subscription that wants it,
 * written with the caller's transaction: a notification exists exactly when the change it
 * reports committed, and nothing is sent from inside that transaction. The body is fixed
 * here, so every retry sends the same bytes (only the signature's timestamp moves).
 */
export async function recordApprovalEvents(
  writer: WebhookDeliveryWriter,
  subscriptions: readonly WebhookSubscription[],
  request: NotifiedRequest,
  events: readonly ApprovalEvent[],
  now: Date,
): Promise<number> {
  if (subscriptions.length === 0 || events.length === 0) return 0;
  const rows: NewWebhookDelivery[] = [];
  for (const e of events) {
    const targets = subscriptions.filter((s) => wants(s, e.event));
    if (targets.length === 0) continue;
    const eventId = randomUUID();
    const payload: Record<string, unknown> = {
      id: eventId,
      event: e.event,
      at: now.toISOString(),
      text: e.text,
      request: {
        id: request.id,
        name: request.name,
        ownerId: request.ownerId,
        lifecycleClass: request.lifecycleClass,
        state: request.state,
      },
      step: e.step,
      decision: e.decision,
      ...(e.addedGroups ? { addedGroups: e.addedGroups } : {}),
    };
    for (const s of targets)
      rows.push({ eventId, event: e.event, subscription: s.name, requestId: request.id, payload, at: now });
  }
  if (rows.length > 0) await writer.insert(rows);
  return rows.length;
}
