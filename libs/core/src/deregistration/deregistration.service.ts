import { type AuditEventInput } from '../audit';
import { NotFound } from '../errors';
import { type ActingContext } from '../identity/identity.service';
import { authorize } from '../identity/authorization';
import { actorOf } from '../identity/principal';
import { type Clock, type Logger } from '../ports';
import { type Deregistrar, type DeregistrationEvent } from './deregistrar.port';
import {
  type DeregistrationRecord,
  type DeregistrationStatus,
  type DeregistrationStore,
} from './deregistration.port';

export interface DeregistrationDeps {
  store: DeregistrationStore;
  targets: readonly Deregistrar[];
  clock: Clock;
  log: Logger;
  audit: (event: AuditEventInput) => Promise<unknown>;
}

export interface DeregistrationOptions {
  /** First retry delay; doubles per attempt. */
  baseBackoffMs: number;
  /** Cap: a target down for a day is still retried this often, never given up. */
  maxBackoffMs: number;
}

/** 30 s then doubling to 30 min: quick for a blip, gentle on a target that is down for hours. */
export const DEFAULT_DEREGISTRATION_OPTIONS: DeregistrationOptions = {
  baseBackoffMs: 30_000,
  maxBackoffMs: 30 * 60_000,
};

const ACTOR = 'system:deregistration';

/**
 * Deregistration from every configured target, each with its own status row. A target that
 * is down never blocks the others and never loses the obligation: its row stays `failed`
 * with a next attempt, and the instance stays `decommissioning` until every row is `done`.
 */
export class DeregistrationService {
  private readonly byName: ReadonlyMap<string, Deregistrar>;

  constructor(
    private readonly deps: DeregistrationDeps,
    private readonly options: DeregistrationOptions = DEFAULT_DEREGISTRATION_OPTIONS,
  ) {
    this.byName = new Map(deps.targets.map((t) => [t.name, t]));
  }

  /**
   * Called by InstanceDecommission once the domain is confirmed gone: creates the rows, tries
   * each target once, and says whether the instance is clean everywhere.
   */
  async begin(event: DeregistrationEvent): Promise<boolean> {
    // The caller attempts every row now; the retry loop leaves them alone for one backoff, or it
    // would call each target a second time at once. Should this worker die first, the loop
    // takes the rows over when that backoff ends.
    const retryFrom = new Date(this.deps.clock.now().getTime() + this.options.baseBackoffMs);
    await this.deps.store.ensure(event.instanceId, [...this.byName.keys()], retryFrom);
    const rows = await this.deps.store.forInstance(event.instanceId);
    await Promise.all(rows.filter((r) => r.status !== 'done').map((r) => this.attempt(r, event)));
    const after = await this.deps.store.forInstance(event.instanceId);
    return after.every((r) => r.status === 'done');
  }

  /** One retry pass over due rows; an instance whose last row succeeds becomes decommissioned. */
  async runDue(limit = 50): Promise<{ attempted: number; done: number }> {
    const now = this.deps.clock.now();
    const rows = await this.deps.store.due(now, limit);
    let done = 0;
    for (const row of rows) {
      const event = await this.deps.store.eventFor(row.instanceId, now);
      if (!event) continue;
      if ((await this.attempt(row, event)) === 'done') {
        done++;
        if (await this.deps.store.completeInstance(row.instanceId)) {
          this.deps.log.info('instance decommissioned after deregistration', { instanceId: row.instanceId });
        }
      }
    }
    return { attempted: rows.length, done };
  }

  async list(
    ctx: ActingContext,
    filter: { status?: DeregistrationStatus; instanceId?: string; limit: number },
  ): Promise<DeregistrationRecord[]> {
    authorize(ctx.subject, 'lifecycle:read');
    return this.deps.store.list(filter);
  }

  /** Makes a row due now; the retry loop (or this call) runs it. */
  async retry(ctx: ActingContext, id: string): Promise<DeregistrationRecord> {
    authorize(ctx.subject, 'maintenance:write');
    const row = await this.deps.store.get(id);
    if (!row) throw new NotFound('deregistration', id);
    if (row.status === 'done') return row;
    await this.deps.audit({
      actor: actorOf(ctx.subject),
      action: 'deregistration.retry',
      objectType: 'deregistration',
      objectId: id,
      before: { status: row.status, attempts: row.attempts, lastError: row.lastError },
      requestId: ctx.requestId ?? null,
    });
    const event = await this.deps.store.eventFor(row.instanceId, this.deps.clock.now());
    if (event && (await this.attempt(row, event, ctx.requestId ?? null)) === 'done')
      await this.deps.store.completeInstance(row.instanceId);
    return (await this.deps.store.get(id)) ?? row;
  }

  /** `requestId`: the operator's request when a retry runs inside one, for its log line. */
  private async attempt(
    row: DeregistrationRecord,
    event: DeregistrationEvent,
    requestId: string | null = null,
  ): Promise<DeregistrationStatus> {
    const target = this.byName.get(row.target);
    const attempts = row.attempts + 1;
    try {
      if (!target) throw new Error('target is no longer configured');
      const { outcome } = await target.deregister(event);
      await this.deps.store.record(row.id, {
        status: 'done',
        attempts,
        lastError: null,
        nextAttemptAt: null,
      });
      await this.deps.audit({
        actor: ACTOR,
        action: 'deregistration.done',
        objectType: 'instance',
        objectId: row.instanceId,
        after: { target: row.target, outcome, attempts },
      });
      return 'done';
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      const delay = Math.min(this.options.baseBackoffMs * 2 ** (attempts - 1), this.options.maxBackoffMs);
      const nextAttemptAt = new Date(this.deps.clock.now().getTime() + delay);
      await this.deps.store.record(row.id, { status: 'failed', attempts, lastError: error, nextAttemptAt });
      this.deps.log.warn('deregistration failed', {
        instanceId: row.instanceId,
        target: row.target,
        attempts,
        error,
        nextAttemptAt: nextAttemptAt.toISOString(),
        ...(requestId === null ? {} : { requestId }),
      });
      await this.deps.audit({
        actor: ACTOR,
        action: 'deregistration.failed',
        objectType: 'instance',
        objectId: row.instanceId,
        after: { target: row.target, attempts, error, nextAttemptAt: nextAttemptAt.toISOString() },
      });
      return 'failed';
    }
  }
}
