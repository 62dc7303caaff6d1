import { type ActingContext } from '../identity/identity.service';
import { authorize } from '../identity/authorization';
import { type InstanceSignalStore } from './alertmanager';
import { type HeartbeatBuffer } from './heartbeat';

/** The part of a Sensu Go event (as a pipe handler or `sensu-go` HTTP handler posts it) Norm reads. */
export interface SensuEvent {
  entity: { metadata: { name: string } };
  check: { metadata: { name: string }; status: number };
}

/**
 * Sensu keepalives as a heartbeat source: a `keepalive` check with status 0 is a beat, any other
 * status a missed beat (the reaper still needs the host to agree). Other checks are ignored.
 */
export class SensuIntake {
  constructor(
    private readonly buffer: HeartbeatBuffer,
    private readonly store: InstanceSignalStore,
    private readonly now: () => Date,
  ) {}

  async receive(
    ctx: ActingContext,
    event: SensuEvent,
  ): Promise<{ outcome: 'alive' | 'missed' | 'ignored' | 'unmatched' }> {
    authorize(ctx.subject, 'maintenance:write');
    if (event.check.metadata.name !== 'keepalive') return { outcome: 'ignored' };
    const name = event.entity.metadata.name;
    const id = (await this.store.resolveInstances([name])).get(name);
    if (!id) return { outcome: 'unmatched' };
    if (event.check.status === 0) {
      this.buffer.beat(id);
      return { outcome: 'alive' };
    }
    await this.store.markMissed([id], this.now());
    return { outcome: 'missed' };
  }
}
