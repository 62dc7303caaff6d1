import { type DeregistrationEvent } from './deregistrar.port';

export const DEREGISTRATION_STATUSES = ['pending', 'done', 'failed'] as const;
export type DeregistrationStatus = (typeof DEREGISTRATION_STATUSES)[number];

/** One instance's obligation towards one target; `failed` rows keep being retried with backoff. */
export interface DeregistrationRecord {
  id: string;
  instanceId: string;
  target: string;
  status: DeregistrationStatus;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface DeregistrationStore {
  /**
   * One row per target for the instance, first due for the retry loop at `retryFrom`; existing
   * rows are left alone (a retried decommission).
   */
  ensure(instanceId: string, targets: readonly string[], retryFrom: Date): Promise<void>;
  forInstance(instanceId: string): Promise<DeregistrationRecord[]>;
  /** Rows not done whose next attempt is due, oldest first. */
  due(now: Date, limit: number): Promise<DeregistrationRecord[]>;
  record(
    id: string,
    patch: {
      status: DeregistrationStatus;
      attempts: number;
      lastError: string | null;
      nextAttemptAt: Date | null;
    },
  ): Promise<void>;
  list(filter: {
    status?: DeregistrationStatus;
    instanceId?: string;
    limit: number;
  }): Promise<DeregistrationRecord[]>;
  get(id: string): Promise<DeregistrationRecord | null>;
  /** The event to send, rebuilt from the instance row; null when the instance is gone. */
  eventFor(instanceId: string, at: Date): Promise<DeregistrationEvent | null>;
  /**
   * Marks a `decommissioning` instance `decommissioned` (with its audit record) when every row
   * is done; returns whether it did.
   */
  completeInstance(instanceId: string): Promise<boolean>;
}
