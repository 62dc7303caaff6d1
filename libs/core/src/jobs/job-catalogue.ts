import { z } from 'zod';

/**
 * The one place that names every job: its queue and its payload schema. Payloads carry ids
 * only; handlers reload state from Postgres. The worker validates every payload again on
 * pickup (it crossed a process boundary) and refuses to boot when a job has no handler.
 */
export const JOB_CATALOGUE = {
  /**
   * Proves the outbox → queue → worker path end to end and completes its operation.
   * `holdMs` keeps it busy (bounded) so graceful shutdown can be observed on a live worker.
   */
  PipelineProbe: {
    queue: 'system',
    payload: z.strictObject({
      operationId: z.uuid(),
      holdMs: z.number().int().min(0).max(60_000).optional(),
    }),
  },
  /** Reconciles an approved request into a running domain (vm-requests/provisioning). */
  VmProvision: {
    queue: 'provision',
    payload: z.strictObject({ requestId: z.uuid() }),
  },
  /**
   * Runs one instance operation (start, stop, reboot, decommission); the operation row says
   * which, so the payload stays an id.
   */
  InstanceAction: {
    queue: 'instances',
    payload: z.strictObject({ operationId: z.uuid() }),
  },
  /**
   * Runs one outside approval step (webhook, command) out of any transaction and records its
   * answer in the request's plan (approvals); the step name comes from the policy file.
   */
  ApprovalStepRun: {
    queue: 'approvals',
    payload: z.strictObject({ requestId: z.uuid(), step: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/) }),
  },
} as const;

export type JobName = keyof typeof JOB_CATALOGUE;
export type JobPayload<N extends JobName> = z.output<(typeof JOB_CATALOGUE)[N]['payload']>;
export type QueueName = (typeof JOB_CATALOGUE)[JobName]['queue'];

export const JOB_NAMES = Object.keys(JOB_CATALOGUE) as JobName[];
export const QUEUE_NAMES = [...new Set(JOB_NAMES.map((n) => JOB_CATALOGUE[n].queue))] as QueueName[];

export function isJobName(name: string): name is JobName {
  return Object.hasOwn(JOB_CATALOGUE, name);
}

/**
 * A job's id is derived from its intent (e.g. `VmProvision.<requestId>`), so two clicks or two
 * racing writers produce one job. BullMQ forbids `:` in custom ids, hence the dot.
 */
export function jobIdFor(name: JobName, key: string): string {
  return `${name}.${key}`;
}

export interface JobContext {
  jobId: string;
  attempt: number;
  signal: AbortSignal;
}

export type JobHandler<N extends JobName> = (payload: JobPayload<N>, ctx: JobContext) => Promise<void>;

/** A handler for every job in the catalogue: a missing one is a compile error, and a boot error. */
export type JobHandlers = { [N in JobName]: JobHandler<N> };

export function parseJobPayload<N extends JobName>(name: N, data: unknown): JobPayload<N> {
  return JOB_CATALOGUE[name].payload.parse(data) as JobPayload<N>;
}

export function assertHandlersComplete(
  handlers: Partial<Record<string, unknown>>,
): asserts handlers is JobHandlers {
  const missing = JOB_NAMES.filter((n) => typeof handlers[n] !== 'function');
  if (missing.length > 0) throw new Error(`jobs without a handler: ${missing.join(', ')}`);
}
