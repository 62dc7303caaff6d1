import { type Clock, type Logger } from '../ports';
import { type ApprovalService } from './approval.service';

export interface ApprovalTimeoutDeps {
  approvals: ApprovalService;
  clock: Clock;
  log: Logger;
}

/**
 * Fires step timers. Every worker may run it: a timer fires under the request's advisory lock
 * and a versioned update, and firing moves or clears it, so two workers fire it once.
 */
export async function runApprovalTimeoutLoop(
  deps: ApprovalTimeoutDeps,
  options: { intervalMs: number; batch: number },
  signal: AbortSignal,
): Promise<{ stopped: 'aborted' }> {
  while (!signal.aborted) {
    try {
      const r = await deps.approvals.fireDueTimers(deps.clock.now(), options.batch);
      if (r.fired > 0) deps.log.info('approval timers fired', { ...r });
    } catch (error) {
      deps.log.error('approval timer sweep failed', {
        error: error instanceof Error ? error.message : String(error),
      });
    }
    await deps.clock.sleep(options.intervalMs, signal).catch(() => undefined);
  }
  return { stopped: 'aborted' };
}

/** The worker's handler for ApprovalStepRun: ids in, the service reloads everything. */
export function handleApprovalStepRun(
  approvals: ApprovalService,
): (payload: { requestId: string; step: string }) => Promise<void> {
  return async (payload) => {
    await approvals.runExternalStep(payload.requestId, payload.step);
  };
}
