export type OperationState = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface OperationView {
  id: string;
  kind: string;
  targetType: string;
  targetId: string;
  state: OperationState;
  steps: Array<{ name: string; at: string; detail?: Record<string, unknown> }>;
  error: Record<string, unknown> | null;
  requestedBy: string;
  createdAt: Date;
  finishedAt: Date | null;
}

/** Persistence of long-running operations. Implemented by libs/inventory. */
export interface OperationStore {
  get(id: string): Promise<OperationView | undefined>;
  /** Moves an open operation to a final state; a second call for a finished one changes nothing. */
  finish(id: string, state: 'succeeded' | 'failed', error?: Record<string, unknown>): Promise<boolean>;
  appendStep(id: string, name: string, detail?: Record<string, unknown>): Promise<void>;
}
