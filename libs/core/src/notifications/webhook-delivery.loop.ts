import { type Clock, type Logger } from '../ports';
import { type WebhookDeliveryService } from './webhook-delivery.service';

/**
 * Sends due notifications. Every worker runs it: claims skip rows another sender holds, so
 * more workers only mean more senders. A full batch goes again at once instead of sleeping.
 */
export async function runWebhookDeliveryLoop(
  deps: { service: WebhookDeliveryService; clock: Clock; log: Logger },
  options: { intervalMs: number; batch: number },
  signal: AbortSignal,
): Promise<{ stopped: 'aborted'; passes: number }> {
  let passes = 0;
  while (!signal.aborted) {
    let attempted = 0;
    try {
      const pass = await deps.service.runDue(options.batch);
      passes++;
      attempted = pass.attempted;
      if (pass.attempted > 0) deps.log.debug('webhook deliveries sent', { ...pass });
    } catch (error) {
      deps.log.error('webhook delivery pass failed', {
        error: error instanceof Error ? error.message : String(error),
      });
    }
    if (attempted < options.batch) await deps.clock.sleep(options.intervalMs, signal).catch(() => undefined);
  }
  return { stopped: 'aborted', passes };
}
