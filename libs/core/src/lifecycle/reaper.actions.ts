import { type AuditEventInput } from '../audit';
import { DomainError } from '../errors';
import { type ActingContext } from '../identity/identity.service';
import { grantsForRoles } from '../identity/permissions';
import { type InstanceService } from '../instances/instance.service';
import { type Logger } from '../ports';
import { type ReaperCandidate } from './reaper.decide';
import { type ReaperActions, type ReaperActOutcome, type ReaperHostRecord } from './reaper.port';

/** The reaper's acting identity; `operations.requested_by` = this marks a reaper stop as a quarantine. */
export const REAPER_ACTOR_ID = 'system:reaper';

const REAPER_CONTEXT: ActingContext = {
  subject: {
    kind: 'principal',
    principal: {
      id: REAPER_ACTOR_ID,
      kind: 'service',
      name: 'reaper',
      roles: ['operator'],
      groups: [],
      createdAt: new Date(0),
    },
    tokenId: REAPER_ACTOR_ID,
    grants: grantsForRoles(['operator']),
  },
  requestId: null,
};

/**
 * The reaper acts through the same instance actions an operator uses, so quarantine is a
 * stop (disk, IP and MAC kept), revival a start, and destroy the one InstanceDecommission
 * path. Each records an operation and enqueues its job with a deterministic id in one
 * transaction, together with the reaper's decision audit; an action already in flight
 * (Conflict) or already taken (InvalidTransition) means a previous cycle got there first,
 * which is neither a failure nor a second decision: that transaction rolls back whole.
 */
export class InstanceServiceReaperActions implements ReaperActions {
  constructor(
    private readonly instances: InstanceService,
    private readonly log: Logger,
  ) {}

  quarantine(
    c: ReaperCandidate,
    _host: ReaperHostRecord,
    _at: Date,
    decision: AuditEventInput,
  ): Promise<ReaperActOutcome> {
    return this.act(c, 'stop', decision);
  }

  revive(
    c: ReaperCandidate,
    _host: ReaperHostRecord | undefined,
    _at: Date,
    decision: AuditEventInput,
  ): Promise<ReaperActOutcome> {
    return this.act(c, 'start', decision);
  }

  decommission(
    c: ReaperCandidate,
    _reason: string,
    _at: Date,
    decision: AuditEventInput,
  ): Promise<ReaperActOutcome> {
    return this.act(c, 'decommission', decision);
  }

  private async act(
    c: ReaperCandidate,
    action: 'stop' | 'start' | 'decommission',
    decision: AuditEventInput,
  ): Promise<ReaperActOutcome> {
    try {
      await this.instances.act(REAPER_CONTEXT, c.instanceId, action, { decision });
      return 'acted';
    } catch (err) {
      if (err instanceof DomainError && (err.code === 'Conflict' || err.code === 'InvalidTransition')) {
        this.log.info('reaper action already taken', { instanceId: c.instanceId, action, code: err.code });
        return 'already-taken';
      }
      throw err;
    }
  }
}
