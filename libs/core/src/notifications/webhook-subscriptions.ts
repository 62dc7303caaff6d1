import { z } from 'zod';
import { APPROVAL_EVENTS, type ApprovalEventName } from './approval-events';

/**
 * One outbound webhook from the policy file's `notifications` list. The secret stays in the
 * environment (`secretEnv`), like webhook steps' secrets, so the file can live in git.
 */
export const subscriptionSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'a lowercase name: letters, digits and -'),
  url: z.url({ protocol: /^https?$/ }),
  secretEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name'),
  /** Which events to send; all of them when absent. */
  events: z.array(z.enum(APPROVAL_EVENTS)).min(1).optional(),
});
export type SubscriptionConfig = z.infer<typeof subscriptionSchema>;

export interface WebhookSubscription {
  name: string;
  url: string;
  secret: string;
  events: ReadonlySet<ApprovalEventName>;
}

export function wants(s: WebhookSubscription, event: ApprovalEventName): boolean {
  return s.events.has(event);
}

/** Resolves the secrets; a missing one is a boot error naming the variable. */
export function buildSubscription(
  c: SubscriptionConfig,
  env: Readonly<Record<string, string | undefined>>,
): WebhookSubscription {
  const secret = env[c.secretEnv];
  if (!secret) throw new Error(`secretEnv: the environment variable ${c.secretEnv} is not set`);
  return { name: c.name, url: c.url, secret, events: new Set(c.events ?? APPROVAL_EVENTS) };
}
