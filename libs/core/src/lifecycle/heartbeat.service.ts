import { type ActingContext, authorizeObject } from '../identity';
import { type HeartbeatBuffer, type HeartbeatStatus } from './heartbeat';

/** The heartbeat route's one call: the instance's own token only, then into the buffer. */
export class HeartbeatService {
  constructor(private readonly buffer: HeartbeatBuffer) {}

  beat(ctx: ActingContext, instanceId: string, status?: HeartbeatStatus): { accepted: true } {
    // No row is read: the token names its instance, and another instance's id answers 404.
    authorizeObject(ctx.subject, 'instances:heartbeat', { instanceId }, 'instance', instanceId);
    this.buffer.beat(instanceId, status);
    return { accepted: true };
  }
}
