/** How an approval step ended, as the step-duration histogram labels it. */
export type StepOutcome = 'approved' | 'rejected' | 'expired' | 'approved_on_timeout';

/** What a webhook delivery attempt came to. */
export type DeliveryResult = 'delivered' | 'retry' | 'failed';

/**
 * The measurements the domain reports. Implemented over prom-client in libs/platform; the
 * domain only says what happened, after the transaction that made it happen committed.
 */
export interface NormMetrics {
  /** A step that was reached got decided; `seconds` runs from when it started waiting (0 if it never waited). */
  approvalStepDecided(step: string, outcome: StepOutcome, seconds: number): void;
  /** A request reached `running`; `seconds` from its creation. */
  requestRunning(lifecycleClass: 'cattle' | 'pet', seconds: number): void;
  approvalTimerFired(step: string, action: string): void;
  webhookAttempt(subscription: string, result: DeliveryResult): void;
}

export const noMetrics: NormMetrics = {
  approvalStepDecided: () => undefined,
  requestRunning: () => undefined,
  approvalTimerFired: () => undefined,
  webhookAttempt: () => undefined,
};
