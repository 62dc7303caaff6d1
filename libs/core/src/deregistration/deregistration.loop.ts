import { type LeaderLock } from '../inventory/leader-lock.port';
import { type Clock, type Logger } from '../ports';
import { type DeregistrationService } from './deregistration.service';

export type DeregistrationStopReason = { reason: 'aborted'; passes: number };

/**
 * Retries due deregistrations. One leader at a time so a target is not called twice for one
 * row at once (it would be harmless, deregistration is idempotent, but noisy for the target).
 */
export async function runDeregistrationLoop(
  deps: { service: DeregistrationService; lock: LeaderLock; clock: Clock; log: Logger },
  options: { intervalMs: number; batch: number },
  signal: AbortSignal,
): Promise<DeregistrationStopReason> {
  let passes = 0;
  while (!signal.aborted) {
    let lease = null;
    try {
      lease = await deps.lock.tryAcquire();
    } catch (err) {
      deps.log.warn('deregistration could not try the leader lock', { error: describe(err) });
    }
    if (lease) {
      const active = AbortSignal.any([signal, lease.lost]);
      try {
        while (!active.aborted) {
          try {
            const pass = await deps.service.runDue(options.batch);
            passes++;
            if (pass.attempted > 0) deps.log.info('deregistration pass', { ...pass });
          } catch (err) {
            deps.log.error('deregistration pass failed', { error: describe(err) });
          }
          await pause(deps.clock, options.intervalMs, active);
        }
      } finally {
        await lease.release();
      }
    } else {
      await pause(deps.clock, options.intervalMs, signal);
    }
  }
  return { reason: 'aborted', passes };
}

async function pause(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  try {
    await clock.sleep(ms, signal);
  } catch {
    // Aborted: the loop condition sees it.
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
