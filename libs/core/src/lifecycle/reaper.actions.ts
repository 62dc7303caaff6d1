import { DomainError } from '../errors';
import { type ActingContext } from '../identity/identity.service';
import { grantsForRoles } from '../identity/permissions';
import { type InstanceService } from '../instances/instance.service';
import { type Logger } from '../ports';
import { type ReaperCandidate } from './reaper.decide';
import { type ReaperActions } from './reaper.port';

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
 * transaction; an action already in flight (Conflict) or already taken (InvalidTransition)
 * means a previous cycle got there first, which is success, not a duplicate.
 */
export class InstanceServiceReaperActions implements ReaperActions {
  constructor(
    private readonly instances: InstanceService,
    private readonly log: Logger,
  ) {}

  quarantine(c: ReaperCandidate): Promise<void> {
    return this.act(c, 'stop');
  }

  revive(c: ReaperCandidate): Promise<void> {
    return this.act(c, 'start');
  }

  decommission(c: ReaperCandidate): Promise<void> {
    return this.act(c, 'decommission');
  }

  private async act(c: ReaperCandidate, action: 'stop' | 'start' | 'decommission'): Promise<void> {
    try {
      await this.instances.act(REAPER_CONTEXT, c.instanceId, action);
    } catch (err) {
      if (err instanceof DomainError && (err.code === 'Conflict' || err.code === 'InvalidTransition')) {
        this.log.info('reaper action already taken', { instanceId: c.instanceId, action, code: err.code });
        return;
      }
      throw err;
    }
  }
}
