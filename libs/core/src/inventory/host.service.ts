import { type AuditEventInput } from '../audit';
import { DomainError, NotFound, ValidationFailed } from '../errors';
import { type ActingContext, actorOf } from '../identity';
import { type Clock, type Logger, type XenHostFactory } from '../ports';
import { type InventoryTx, type InventoryUnitOfWork } from './catalogue.port';
import { type DriftEntry, diffDomains } from './drift';
import { endpointOf, type HostObservation, type HostPatch, type HostRecord, type NewHost } from './host.port';
import { observeHost } from './observe-host';

export interface DriftReport {
  generatedAt: Date;
  /** The hosts the report is based on; only online, synced hosts give evidence. */
  hosts: Array<{ id: string; name: string; status: HostRecord['status']; observedAt: Date | null }>;
  entries: DriftEntry[];
}

/** What an operator confirms before pinning: compare with `ssh-keygen -lf` run on the host itself. */
export interface ScannedHostKey {
  address: string;
  port: number;
  fingerprint: string;
  scannedAt: Date;
  /** Shown as is: trust on first use is only safe if a person checks it out of band. */
  confirm: string;
}

export interface HostServiceDeps {
  uow: InventoryUnitOfWork;
  xen: XenHostFactory;
  clock: Clock;
  log: Logger;
}

/**
 * Host registration and administration. Registration probes the host first: a host Norm
 * cannot reach, or whose key differs from the pinned fingerprint, is never stored.
 */
export class HostService {
  constructor(private readonly deps: HostServiceDeps) {}

  async register(ctx: ActingContext, input: NewHost): Promise<HostRecord> {
    const observation = await this.probe(input, ctx.requestId ?? null);
    return this.deps.uow.run(async (tx) => {
      const host = await tx.hosts.create(input, observation, this.deps.clock.now());
      await tx.audit.append(event(ctx, 'host.register', host.id, null, hostAudit(host)));
      return host;
    });
  }

  list(): Promise<HostRecord[]> {
    return this.deps.uow.run((tx) => tx.hosts.list());
  }

  /**
   * Trust on first use, made explicit: reads the key a host offers (the handshake stops before
   * authentication, nothing runs there) so the operator can compare it out of band and then
   * pin it in the registration. Nothing is stored: a scanned key is never trusted by itself.
   */
  async scanHostKey(ctx: ActingContext, target: { address: string; port: number }): Promise<ScannedHostKey> {
    const fingerprint = await this.deps.xen.readFingerprint(target.address, target.port);
    this.deps.log.info('host key scanned', {
      ...target,
      fingerprint,
      by: actorOf(ctx.subject),
      requestId: ctx.requestId ?? null,
    });
    return {
      ...target,
      fingerprint,
      scannedAt: this.deps.clock.now(),
      confirm:
        'compare with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host (or the fingerprint ' +
        'ansible/playbooks/xen-host.yml printed) before passing it as hostKeyFingerprint to POST /v1/hosts',
    };
  }

  async get(id: string): Promise<HostRecord> {
    const host = await this.deps.uow.run((tx) => tx.hosts.get(id));
    if (!host) throw new NotFound('host', id);
    return host;
  }

  update(ctx: ActingContext, id: string, patch: HostPatch): Promise<HostRecord> {
    return this.change(ctx, id, 'host.update', (tx) => tx.hosts.update(id, patch));
  }

  /** Drains the host from placement; its running domains are left exactly as they are. */
  setMaintenance(ctx: ActingContext, id: string, on: boolean): Promise<HostRecord> {
    return this.change(ctx, id, on ? 'host.maintenance.on' : 'host.maintenance.off', (tx) =>
      tx.hosts.setMaintenance(id, on),
    );
  }

  /**
   * Refused while Norm still has something there: a live instance (its domain and disk are on
   * that host) or a request placed there and not yet running. Finished instances and requests
   * that ran there are detached (host null) rather than kept behind a tombstone host: the
   * audit chain already holds where each was placed (`vm-request.place`) and, in this
   * deletion's event, what the host was; a tombstone would have to be filtered out of every
   * read of hosts (sync, placement, drift, inventory) for rows nobody acts on.
   */
  async delete(ctx: ActingContext, id: string): Promise<void> {
    await this.deps.uow.run(async (tx) => {
      // Holding the row makes a placement that names this host wait for the outcome.
      const host = await tx.hosts.get(id, { forUpdate: true });
      if (!host) throw new NotFound('host', id);
      const live = await tx.instances.liveOnHost(id);
      if (live.instances > 0 || live.requests > 0)
        throw new DomainError('Conflict', 'host still has live instances or requests in flight', {
          hostId: id,
          liveInstances: live.instances,
          requestsInFlight: live.requests,
        });
      const detached = await tx.hosts.delete(id);
      if (!detached) throw new NotFound('host', id);
      await tx.audit.append({
        ...event(ctx, 'host.delete', id, hostAudit(host), null),
        reason: `detached ${detached.instances} finished instance(s) and ${detached.requests} finished request(s)`,
      });
    });
  }

  /** Drift of one host (`hostId`) or of the whole fleet. Report-only: nothing acts on it. */
  async drift(hostId?: string): Promise<DriftReport> {
    return this.deps.uow.run(async (tx) => {
      const hosts = await tx.hosts.list();
      if (hostId !== undefined && !hosts.some((h) => h.id === hostId)) throw new NotFound('host', hostId);
      const instances = await tx.instances.listForDrift();
      const all = diffDomains(
        hosts.map((h) => ({
          id: h.id,
          name: h.name,
          status: h.status,
          observedAt: h.lastSyncAt,
          observedDomains: h.observedDomains,
        })),
        instances,
      );
      const entries = hostId === undefined ? all : all.filter((e) => involves(e, hostId));
      const scope = hostId === undefined ? hosts : hosts.filter((h) => h.id === hostId);
      return {
        generatedAt: this.deps.clock.now(),
        hosts: scope.map((h) => ({ id: h.id, name: h.name, status: h.status, observedAt: h.lastSyncAt })),
        entries,
      };
    });
  }

  private async probe(input: NewHost, requestId: string | null): Promise<HostObservation> {
    const endpoint = endpointOf(input);
    try {
      return await observeHost(this.deps.xen.forHost(endpoint));
    } catch (err) {
      this.deps.log.warn('host registration probe failed', {
        host: input.name,
        address: input.address,
        port: input.port,
        error: err instanceof Error ? err.message : String(err),
        code: err instanceof DomainError ? err.code : undefined,
        requestId,
      });
      throw registrationError(err, input);
    }
  }

  private async change(
    ctx: ActingContext,
    id: string,
    action: string,
    apply: (tx: InventoryTx) => Promise<HostRecord | undefined>,
  ): Promise<HostRecord> {
    return this.deps.uow.run(async (tx) => {
      const before = await tx.hosts.get(id);
      if (!before) throw new NotFound('host', id);
      const after = await apply(tx);
      if (!after) throw new NotFound('host', id);
      await tx.audit.append(event(ctx, action, id, hostAudit(before), hostAudit(after)));
      return after;
    });
  }
}

/**
 * At registration the operator supplied the address and the fingerprint, so a mismatch is a
 * bad input (named, with what the host presented) and an unreachable host is reported with
 * where Norm tried, rather than as an opaque upstream failure.
 */
function registrationError(err: unknown, input: NewHost): unknown {
  if (!(err instanceof DomainError)) return err;
  if (err.code === 'HostKeyMismatch')
    return new ValidationFailed('host key does not match the pinned fingerprint', [
      {
        path: 'hostKeyFingerprint',
        message: `the host presented ${typeof err.details.actual === 'string' ? err.details.actual : 'another key'}`,
      },
    ]);
  if (err.code === 'HostUnreachable' || err.code === 'CommandTimeout')
    return new DomainError(
      'DependencyUnavailable',
      'host unreachable: registration could not run xl info and vgs on it',
      { address: input.address, port: input.port, reason: err.details.reason ?? err.message },
      { cause: err },
    );
  return err;
}

function involves(e: DriftEntry, hostId: string): boolean {
  return e.hostId === hostId || (e.kind === 'wrong_host' && e.expectedHostId === hostId);
}

function event(
  ctx: ActingContext,
  action: string,
  objectId: string,
  before: Record<string, unknown> | null,
  after: Record<string, unknown> | null,
): AuditEventInput {
  return {
    actor: actorOf(ctx.subject),
    action,
    objectType: 'host',
    objectId,
    before,
    after,
    requestId: ctx.requestId ?? null,
  };
}

/** The administrative facts of a host; observed capacity changes every sync and is not audited. */
function hostAudit(h: HostRecord): Record<string, unknown> {
  return {
    name: h.name,
    address: h.address,
    port: h.port,
    sshUser: h.sshUser,
    sudo: h.sudo,
    hostKeyFingerprint: h.hostKeyFingerprint,
    labels: h.labels,
    limits: h.limits,
    maintenance: h.maintenance,
    placementBlockedReason: h.placementBlockedReason,
  };
}
