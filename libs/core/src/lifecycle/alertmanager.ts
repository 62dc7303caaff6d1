import { type ActingContext } from '../identity/identity.service';
import { authorize } from '../identity/authorization';
import { type HeartbeatBuffer } from './heartbeat';

/** The part of Alertmanager's webhook payload (version 4) Norm reads. */
export interface AlertmanagerPayload {
  version?: string;
  status?: string;
  alerts: Array<{ status: 'firing' | 'resolved'; labels: Record<string, string> }>;
}

export interface InstanceSignalStore {
  /** Live instances whose name, domain name or IP is one of `keys` (an `instance` label, port stripped). */
  resolveInstances(keys: readonly string[]): Promise<Map<string, string>>;
  /** A missed beat: the deadline moves to `now` unless it is already earlier. */
  markMissed(instanceIds: readonly string[], now: Date): Promise<number>;
}

/** Alert names that speak about an instance's liveness; other alerts are ignored. */
export const LIVENESS_ALERTS = /^(InstanceDown|.*Down|.*Unreachable|.*Heartbeat.*)$/;

/**
 * Alertmanager as a heartbeat source: a resolved liveness alert is a beat, a firing one a missed
 * beat. A missed beat only makes the instance a candidate sooner; the reaper still needs the
 * host and `xl list` to agree before it acts, so a flapping alert rule cannot destroy anything.
 */
export class AlertmanagerIntake {
  constructor(
    private readonly buffer: HeartbeatBuffer,
    private readonly store: InstanceSignalStore,
    private readonly now: () => Date,
  ) {}

  async receive(
    ctx: ActingContext,
    payload: AlertmanagerPayload,
  ): Promise<{ alive: number; missed: number; unmatched: number }> {
    authorize(ctx.subject, 'maintenance:write');
    const relevant = payload.alerts.filter(
      (a) => LIVENESS_ALERTS.test(a.labels.alertname ?? '') && a.labels.instance,
    );
    const keyOf = (label: string): string => label.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    const ids = await this.store.resolveInstances([
      ...new Set(relevant.map((a) => keyOf(a.labels.instance ?? ''))),
    ]);
    const missed: string[] = [];
    let alive = 0;
    let unmatched = 0;
    for (const a of relevant) {
      const id = ids.get(keyOf(a.labels.instance ?? ''));
      if (!id) {
        unmatched++;
      } else if (a.status === 'resolved') {
        this.buffer.beat(id);
        alive++;
      } else {
        missed.push(id);
      }
    }
    if (missed.length) await this.store.markMissed(missed, this.now());
    return { alive, missed: missed.length, unmatched };
  }
}
