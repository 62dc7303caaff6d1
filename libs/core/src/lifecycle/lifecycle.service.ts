import { type AuditEventInput } from '../audit';
import { type ActingContext } from '../identity/identity.service';
import { authorize } from '../identity/authorization';
import { actorOf } from '../identity/principal';
import { type Clock, type Logger, type XenHostFactory } from '../ports';
import { type ReaperDecision, type ReapingPlan } from './reaper.decide';
import { Reaper, type ReaperOptions } from './reaper.loop';
import {
  type ReaperActions,
  type ReaperControl,
  type ReaperStatusView,
  type ReaperStore,
} from './reaper.port';

export interface LifecycleServiceDeps {
  store: ReaperStore;
  xen: XenHostFactory;
  control: ReaperControl;
  clock: Clock;
  log: Logger;
  audit: (event: AuditEventInput) => Promise<unknown>;
}

export interface LifecyclePreview {
  at: string;
  /** False when no reaper published a status recently: the preview then assumes a fresh start. */
  leaderSeen: boolean;
  breaker: ReapingPlan['breaker'];
  frozenHosts: ReapingPlan['frozenHosts'];
  hostAlerts: ReapingPlan['hostAlerts'];
  decisions: ReaperDecision[];
}

/** A preview never acts: any attempt is a bug, and says so. */
const NO_ACTIONS: ReaperActions = {
  quarantine: () => Promise.reject(new Error('preview does not act')),
  revive: () => Promise.reject(new Error('preview does not act')),
  decommission: () => Promise.reject(new Error('preview does not act')),
};

/** The operator's view of the reaper: what it would do now, how it is, and its controls. */
export class LifecycleService {
  constructor(
    private readonly deps: LifecycleServiceDeps,
    private readonly options: ReaperOptions,
  ) {}

  async status(ctx: ActingContext): Promise<ReaperStatusView & { leaderSeen: boolean }> {
    authorize(ctx.subject, 'lifecycle:read');
    const [published, control] = await Promise.all([
      this.deps.control.readStatus(),
      this.deps.control.read(),
    ]);
    if (published) return { ...published, paused: control.paused, leaderSeen: true };
    const idle = new Reaper({ ...this.deps, actions: NO_ACTIONS }, this.options).status(false);
    return { ...idle, paused: control.paused, leaderSeen: false };
  }

  /** Decides with the leader's memory (breaker, baseline, grace) against the fleet as it is now. */
  async preview(ctx: ActingContext): Promise<LifecyclePreview> {
    authorize(ctx.subject, 'lifecycle:read');
    const [published, control] = await Promise.all([
      this.deps.control.readStatus(),
      this.deps.control.read(),
    ]);
    const reaper = new Reaper({ ...this.deps, actions: NO_ACTIONS }, this.options, {
      paused: control.paused,
      ...(published
        ? {
            startedAt: new Date(published.startedAt),
            breaker: published.breaker
              ? { reason: published.breaker.reason, since: new Date(published.breaker.since) }
              : null,
            intakeBaseline: published.intakeBaseline,
            recentActions: Array.from({ length: published.actionsInWindow }, () => this.deps.clock.now()),
          }
        : {}),
    });
    const { plan } = await reaper.plan();
    return {
      at: this.deps.clock.now().toISOString(),
      leaderSeen: published !== null,
      breaker: plan.breaker,
      frozenHosts: plan.frozenHosts,
      hostAlerts: plan.hostAlerts,
      decisions: plan.decisions,
    };
  }

  async pause(ctx: ActingContext): Promise<{ paused: boolean }> {
    return this.setPaused(ctx, true);
  }

  async resume(ctx: ActingContext): Promise<{ paused: boolean }> {
    return this.setPaused(ctx, false);
  }

  /** The leading reaper closes its breaker and restarts every deadline on its next cycle. */
  async resetBreaker(ctx: ActingContext): Promise<{ requested: true }> {
    authorize(ctx.subject, 'maintenance:write');
    const actor = actorOf(ctx.subject);
    await this.deps.control.requestReset(actor);
    await this.deps.audit({
      actor,
      action: 'lifecycle.breaker.reset-requested',
      objectType: 'reaper',
      objectId: null,
      requestId: ctx.requestId ?? null,
    });
    return { requested: true };
  }

  private async setPaused(ctx: ActingContext, paused: boolean): Promise<{ paused: boolean }> {
    authorize(ctx.subject, 'maintenance:write');
    await this.deps.control.setPaused(paused);
    await this.deps.audit({
      actor: actorOf(ctx.subject),
      action: paused ? 'lifecycle.pause' : 'lifecycle.resume',
      objectType: 'reaper',
      objectId: null,
      after: { paused },
      requestId: ctx.requestId ?? null,
    });
    return { paused };
  }
}
