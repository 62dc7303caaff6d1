import { type JobHandler } from '../jobs';
import { type Clock, systemClock } from '../ports';
import { type OperationStore } from './operation.port';

/**
 * Completes a probe operation: proof that a commit in the API reaches a worker through the
 * outbox and the queue. Finishing is idempotent, so a redelivered probe changes nothing.
 */
export function handlePipelineProbe(
  operations: OperationStore,
  clock: Clock = systemClock,
): JobHandler<'PipelineProbe'> {
  return async ({ operationId, holdMs }, { signal }) => {
    const op = await operations.get(operationId);
    if (!op) return; // The row is gone: nothing left to do, end quietly.
    await operations.appendStep(operationId, 'probe-received');
    if (holdMs) await clock.sleep(holdMs, signal);
    await operations.finish(operationId, 'succeeded');
  };
}
