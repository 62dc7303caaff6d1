import { authorizeObject, ownerFilter } from '../identity/authorization';
import { type ActingContext, type IssuedToken } from '../identity/identity.service';
import { generateToken, hashSecret, INSTANCE_TOKEN_SCRYPT } from '../identity/token-secret';
import { actorOf } from '../identity/principal';
import { type AuditEventInput } from '../audit';
import { Conflict, DomainError, NotFound, ValidationFailed } from '../errors';
import {
  type HeartbeatTimeoutBounds,
  type HeartbeatTimeouts,
  heartbeatTimeoutProblem,
} from '../lifecycle/heartbeat';
import { jobIdFor } from '../jobs';
import { type OperationStore, type OperationView } from '../operations';
import { type Clock } from '../ports';
import {
  type InstanceFilter,
  type InstanceRecord,
  type Page,
  type VmRequestUnitOfWork,
} from '../vm-requests/vm-request.port';
import {
  assertInstanceTransition,
  type InstanceState,
  InvalidTransition,
} from '../vm-requests/vm-request.state';

export const INSTANCE_ACTIONS = ['stop', 'start', 'reboot', 'decommission'] as const;
export type InstanceAction = (typeof INSTANCE_ACTIONS)[number];

/**
 * Where each action may start, and the state it sets at once (before the job runs), so a
 * second action sees the first one in flight. Start and reboot set nothing: the domain's
 * state is unchanged until the host confirms.
 */
const ACTION_RULES: Readonly<
  Record<InstanceAction, { from: readonly InstanceState[]; during?: InstanceState }>
> = {
  stop: { from: ['running'], during: 'stopping' },
  start: { from: ['stopped'] },
  reboot: { from: ['running'] },
  // From decommissioning too: a decommission that failed or passed its deadline may be retried.
  decommission: { from: ['running', 'stopped', 'stopping', 'decommissioning'], during: 'decommissioning' },
};

export interface InstanceServiceOptions {
  /** How long an action may stay open before the stuck-work check takes it over. */
  operationDeadlineMs: number;
  /** Class timeouts (for a deadline when an override is removed) and the bounds of an override. */
  heartbeat: { timeouts: HeartbeatTimeouts; bounds: HeartbeatTimeoutBounds };
}

/** An instance past these has no heartbeat to judge; its timeout is history. */
const TIMEOUT_FROZEN_STATES: readonly InstanceState[] = ['decommissioning', 'decommissioned', 'failed'];

export class InstanceService {
  constructor(
    private readonly uow: VmRequestUnitOfWork,
    private readonly operations: OperationStore,
    private readonly clock: Clock,
    private readonly options: InstanceServiceOptions,
  ) {}

  async list(ctx: ActingContext, filter: InstanceFilter): Promise<Page<InstanceRecord>> {
    const own = ownerFilter(ctx.subject, 'instances:read');
    if (own !== undefined && filter.ownerId !== undefined && filter.ownerId !== own) return { items: [] };
    return this.uow.read((db) => db.instanceStore.list({ ...filter, ownerId: own ?? filter.ownerId }));
  }

  async get(ctx: ActingContext, id: string): Promise<InstanceRecord> {
    const i = await this.uow.read((db) => db.instanceStore.get(id));
    if (!i) throw new NotFound('instance', id);
    authorizeObject(ctx.subject, 'instances:read', { ownerId: i.ownerId, instanceId: i.id }, 'instance', id);
    return i;
  }

  /**
   * Records the operation, moves the instance into the action's transitional state and writes
   * the job, in one transaction: a 202 always has a job behind it.
   */
  async act(
    ctx: ActingContext,
    id: string,
    action: InstanceAction,
    /**
     * An automated caller's decision record, committed with the operation and its job or not
     * at all: the reaper's "act" audit never exists without its effect, nor twice for one.
     */
    options: { decision?: AuditEventInput } = {},
  ): Promise<OperationView> {
    const operationId = await this.uow.run(async (tx) => {
      const i = await tx.instanceStore.get(id);
      if (!i) throw new NotFound('instance', id);
      authorizeObject(ctx.subject, 'instances:act', { ownerId: i.ownerId, instanceId: i.id }, 'instance', id);
      const rule = ACTION_RULES[action];
      if (!rule.from.includes(i.state))
        throw new InvalidTransition(
          'instance',
          id,
          i.state,
          action,
          `cannot ${action} an instance that is ${i.state}`,
        );
      const open = await tx.operations.openFor('instance', id);
      if (open.length > 0)
        throw new DomainError('Conflict', 'another action on this instance is still running', {
          instanceId: id,
          operationId: open[0],
        });
      if (rule.during) {
        assertInstanceTransition(id, i.state, rule.during);
        const moved = await tx.instanceStore.update(i.id, i.version, { state: rule.during });
        if (!moved)
          throw new InvalidTransition('instance', id, i.state, action, 'the instance changed concurrently');
      }
      const actor = actorOf(ctx.subject);
      const opId = await tx.operations.create({
        kind: `instance.${action}`,
        targetType: 'instance',
        targetId: id,
        requestedBy: actor,
        deadlineAt: new Date(this.clock.now().getTime() + this.options.operationDeadlineMs),
      });
      await tx.outbox.enqueue('InstanceAction', jobIdFor('InstanceAction', opId), { operationId: opId });
      if (options.decision)
        await tx.audit.append({
          ...options.decision,
          after: { ...options.decision.after, operationId: opId },
        });
      await tx.audit.append({
        actor,
        action: `instance.${action}`,
        objectType: 'instance',
        objectId: id,
        before: { state: i.state },
        after: { state: rule.during ?? i.state, operationId: opId },
        requestId: ctx.requestId ?? null,
      });
      return opId;
    });
    const op = await this.operations.get(operationId);
    if (!op) throw new NotFound('operation', operationId);
    return op;
  }

  /**
   * Issues a fresh instance token, shown once: what the guest's heartbeat agent presents.
   * Provisioning hands one to the guest itself (kernel command line or NoCloud seed); this is
   * how an operator or the instance's owner obtains another, e.g. for a guest whose agent
   * they configure by hand. Earlier tokens stay valid; each is good only for this instance's
   * heartbeat.
   */
  async issueToken(ctx: ActingContext, id: string): Promise<IssuedToken> {
    // Hashed before the transaction: scrypt must not hold a connection and row lock.
    const { token, prefix, secret } = generateToken();
    const secretHash = await hashSecret(secret, INSTANCE_TOKEN_SCRYPT);
    const view = await this.uow.run(async (tx) => {
      const i = await tx.instanceStore.get(id);
      if (!i) throw new NotFound('instance', id);
      authorizeObject(ctx.subject, 'instances:act', { ownerId: i.ownerId, instanceId: i.id }, 'instance', id);
      if (i.state !== 'running' && i.state !== 'stopped')
        throw new Conflict(`an instance that is ${i.state} gets no heartbeat token`, {
          instanceId: id,
          state: i.state,
        });
      const actor = actorOf(ctx.subject);
      const created = await tx.tokens.create({
        kind: 'instance',
        principalId: null,
        instanceId: i.id,
        name: `instance ${i.id}`,
        prefix,
        secretHash,
        expiresAt: null,
        createdBy: actor,
      });
      await tx.audit.append({
        actor,
        action: 'token.create',
        objectType: 'instance-token',
        objectId: created.id,
        after: { id: created.id, kind: created.kind, instanceId: i.id, prefix: created.prefix },
        requestId: ctx.requestId ?? null,
      });
      return created;
    });
    return { token, view };
  }

  /**
   * Sets (or with null removes) the instance's own heartbeat timeout. The deadline moves at
   * once to last beat + the timeout now in force, so a shorter timeout can make an instance
   * a candidate on the reaper's next cycle; every brake still applies.
   */
  async setHeartbeatTimeout(
    ctx: ActingContext,
    id: string,
    timeoutMs: number | null,
  ): Promise<InstanceRecord> {
    return this.uow.run(async (tx) => {
      const i = await tx.instanceStore.get(id);
      if (!i) throw new NotFound('instance', id);
      authorizeObject(ctx.subject, 'instances:act', { ownerId: i.ownerId, instanceId: i.id }, 'instance', id);
      if (timeoutMs !== null) {
        const problem = heartbeatTimeoutProblem(timeoutMs, this.options.heartbeat.bounds);
        if (problem)
          throw new ValidationFailed('the heartbeat timeout is outside the allowed range', [
            { path: 'heartbeatTimeout', message: problem },
          ]);
      }
      if (TIMEOUT_FROZEN_STATES.includes(i.state))
        throw new InvalidTransition(
          'instance',
          id,
          i.state,
          'heartbeat-timeout',
          `an instance that is ${i.state} has no heartbeat timeout to change`,
        );
      const timeoutS = timeoutMs === null ? null : timeoutMs / 1000;
      const after = await tx.instanceStore.setHeartbeatTimeout(
        i.id,
        i.version,
        timeoutS,
        this.options.heartbeat.timeouts,
      );
      if (!after)
        throw new InvalidTransition(
          'instance',
          id,
          i.state,
          'heartbeat-timeout',
          'the instance changed concurrently',
        );
      await tx.audit.append({
        actor: actorOf(ctx.subject),
        action: 'instance.heartbeat-timeout',
        objectType: 'instance',
        objectId: id,
        before: {
          heartbeatTimeoutS: i.heartbeatTimeoutS,
          heartbeatDeadlineAt: i.heartbeatDeadlineAt?.toISOString() ?? null,
        },
        after: {
          heartbeatTimeoutS: after.heartbeatTimeoutS,
          heartbeatDeadlineAt: after.heartbeatDeadlineAt?.toISOString() ?? null,
          classTimeoutS: this.options.heartbeat.timeouts[i.lifecycleClass === 'cattle' ? 'cattleS' : 'petS'],
        },
        requestId: ctx.requestId ?? null,
      });
      return after;
    });
  }

  /**
   * An operation, once its target is visible to the caller. `waitMs` polls until it finishes
   * (for scripts), returning whatever state it reached when the wait ends.
   */
  async operation(ctx: ActingContext, id: string, waitMs = 0, signal?: AbortSignal): Promise<OperationView> {
    const deadline = this.clock.now().getTime() + waitMs;
    let op = await this.visibleOperation(ctx, id);
    while ((op.state === 'pending' || op.state === 'running') && this.clock.now().getTime() < deadline) {
      await this.clock.sleep(Math.min(200, deadline - this.clock.now().getTime()), signal);
      op = (await this.operations.get(id)) ?? op;
    }
    return op;
  }

  private async visibleOperation(ctx: ActingContext, id: string): Promise<OperationView> {
    const op = await this.operations.get(id);
    if (!op) throw new NotFound('operation', id);
    if (op.targetType === 'instance') {
      const i = await this.uow.run((tx) => tx.instanceStore.get(op.targetId));
      authorizeObject(
        ctx.subject,
        'instances:read',
        { ownerId: i?.ownerId ?? null, instanceId: i?.id ?? null },
        'operation',
        id,
      );
    } else authorizeObject(ctx.subject, 'instances:read', { ownerId: op.requestedBy }, 'operation', id);
    return op;
  }
}
