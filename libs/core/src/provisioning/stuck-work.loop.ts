import { jobIdFor } from '../jobs';
import { type Clock, type Logger } from '../ports';
import { type VmRequestUnitOfWork } from '../vm-requests/vm-request.port';
import { type VmRequestService } from '../vm-requests/vm-request.service';

export interface StuckWorkOptions {
  /** A request untouched this long in approved/provisioning gets its job enqueued again. */
  resumeAfterMs: number;
  /** Past this, it is given up: compensated and failed instead of resumed. */
  giveUpAfterMs: number;
  intervalMs: number;
  batch: number;
}

export interface StuckWorkDeps {
  uow: VmRequestUnitOfWork;
  requests: VmRequestService;
  clock: Clock;
  log: Logger;
}

export interface SweepResult {
  resumed: number;
  failed: number;
  operationsFailed: number;
}

const SYSTEM = 'system:stuck-work';

/**
 * One pass over work that should have finished: a request whose worker died mid-job (and whose
 * BullMQ retries ran out), or a job lost with a Redis that restarted empty. Resuming enqueues
 * the reconcile again under an id derived from the request's version, so two sweeping workers
 * enqueue one job; the handler's own checks make the extra run safe. Past the give-up age the
 * request is marked for compensation (provisioning) or failed outright (approved: nothing built).
 */
export async function sweepStuckWork(deps: StuckWorkDeps, options: StuckWorkOptions): Promise<SweepResult> {
  const now = deps.clock.now().getTime();
  const result: SweepResult = { resumed: 0, failed: 0, operationsFailed: 0 };
  const stalled = await deps.uow.run((tx) =>
    tx.requests.listStalled(new Date(now - options.resumeAfterMs), options.batch),
  );
  for (const r of stalled) {
    const age = now - r.updatedAt.getTime();
    await deps.uow.run(async (tx) => {
      const current = await tx.requests.get(r.id);
      if (!current || current.version !== r.version) return;
      if (age >= options.giveUpAfterMs && current.state === 'approved') {
        await deps.requests.transition(tx, current, 'failed', SYSTEM, 'provisioning never started', {
          stateReason: 'provisioning never started',
          error: { code: 'DeadlineExceeded', message: 'provisioning never started' },
        });
        result.failed++;
      } else {
        let version = current.version;
        if (age >= options.giveUpAfterMs && current.error === null) {
          // The next run sees the error and compensates instead of building forward.
          const marked = await tx.requests.update(current.id, current.version, {
            error: { code: 'DeadlineExceeded', message: 'provisioning took too long; undoing' },
          });
          if (!marked) return;
          version = marked.version;
          result.failed++;
        } else result.resumed++;
        await tx.outbox.enqueue('VmProvision', jobIdFor('VmProvision', `${current.id}.v${version}`), {
          requestId: current.id,
        });
      }
      await tx.audit.append({
        actor: SYSTEM,
        action: 'vm-request.stuck',
        objectType: 'vm-request',
        objectId: r.id,
        after: { state: current.state, ageMs: age },
        reason: age >= options.giveUpAfterMs ? 'given up' : 'resumed',
      });
    });
  }
  const overdue = await deps.uow.run((tx) => tx.operations.listOverdue(new Date(now), options.batch));
  for (const op of overdue) {
    await deps.uow.run(async (tx) => {
      if (
        !(await tx.operations.fail(op.id, {
          code: 'DeadlineExceeded',
          message: 'the operation passed its deadline',
        }))
      )
        return;
      // A stop that never finished leaves the domain as it was; decommissioning may be retried.
      const i = await tx.instanceStore.get(op.targetId);
      if (i?.state === 'stopping') await tx.instanceStore.update(i.id, i.version, { state: 'running' });
      await tx.audit.append({
        actor: SYSTEM,
        action: 'operation.deadline',
        objectType: 'operation',
        objectId: op.id,
        after: { kind: op.kind, targetId: op.targetId },
      });
      result.operationsFailed++;
    });
  }
  return result;
}

/** Runs the sweep every interval until `signal` aborts; returns why it stopped. */
export async function runStuckWorkLoop(
  deps: StuckWorkDeps,
  options: StuckWorkOptions,
  signal: AbortSignal,
): Promise<{ stopped: 'aborted' }> {
  while (!signal.aborted) {
    try {
      const r = await sweepStuckWork(deps, options);
      if (r.resumed + r.failed + r.operationsFailed > 0) deps.log.warn('stuck work handled', { ...r });
    } catch (error) {
      deps.log.error('stuck work sweep failed', {
        error: error instanceof Error ? error.message : String(error),
      });
    }
    await deps.clock.sleep(options.intervalMs, signal).catch(() => undefined);
  }
  return { stopped: 'aborted' };
}
