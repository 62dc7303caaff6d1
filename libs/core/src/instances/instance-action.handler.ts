import { type DeregistrationEvent } from '../deregistration/deregistrar.port';
import { DomainError, isDomainError } from '../errors';
import { endpointOf } from '../inventory/host.port';
import { type JobHandler } from '../jobs';
import { type OperationStore } from '../operations';
import { type Clock, type Logger, type XenHost, type XenHostFactory } from '../ports';
import { type RevocationNotifier } from '../identity/identity.port';
import { type HostSlots } from '../provisioning/host-slots.port';
import { describe, domainConfig, perHostCap } from '../provisioning/vm-provision.handler';
import {
  type InstanceRecord,
  type InstancePatch,
  type VmRequestUnitOfWork,
} from '../vm-requests/vm-request.port';
import { type InstanceState } from '../vm-requests/vm-request.state';

export interface InstanceActionDeps {
  uow: VmRequestUnitOfWork;
  operations: OperationStore;
  xen: XenHostFactory | undefined;
  limiter: HostSlots;
  clock: Clock;
  log: Logger;
  maxAttempts: number;
  /** `xl shutdown -w` before `xl destroy`: a guest that ignores ACPI for this long is forced off. */
  shutdownTimeoutMs: number;
  /**
   * Deregistration from every configured target once the domain is confirmed gone. Absent:
   * no targets, the instance is decommissioned at once. Present: it stays decommissioning
   * until every target is done (the deregistration loop finishes it).
   */
  deregistration?: { begin(event: DeregistrationEvent): Promise<boolean> };
  /**
   * Told after a decommission revoked the instance's tokens, so every API replica drops its
   * cached copy at once instead of when its cache entry ages out.
   */
  revocations: RevocationNotifier;
}

const SYSTEM = 'system:instance-action';

/**
 * InstanceAction: runs the operation the API recorded. Each verb is idempotent on the host
 * (shutdown/destroy of a gone domain succeed, create checks `xl list` first), so a redelivered
 * job converges; the operation's `finish` is a no-op the second time.
 */
export function handleInstanceAction(deps: InstanceActionDeps): JobHandler<'InstanceAction'> {
  return async ({ operationId }, { attempt }) => {
    const op = await deps.operations.get(operationId);
    if (!op || (op.state !== 'pending' && op.state !== 'running')) return;
    const action = op.kind.replace(/^instance\./, '');
    const loaded = await deps.uow.run(async (tx) => {
      const instance = await tx.instanceStore.get(op.targetId);
      if (!instance?.hostId) return undefined;
      const host = await tx.hosts.get(instance.hostId);
      const request = await tx.requests.get(instance.vmRequestId);
      return host && request ? { instance, host, request } : undefined;
    });
    if (!loaded) {
      await deps.operations.finish(operationId, 'failed', {
        code: 'NotFound',
        message: 'the instance or its host is gone',
      });
      return;
    }
    if (!deps.xen)
      throw new DomainError('DependencyUnavailable', 'this worker has no Xen transport configured');
    const xen = deps.xen.forHost(endpointOf(loaded.host));
    const { instance } = loaded;
    await deps.operations.appendStep(operationId, 'started', { attempt });
    try {
      await deps.limiter.run(loaded.host.id, perHostCap(loaded.host), async () => {
        switch (action) {
          case 'stop': {
            const r = await xen.shutdownDomain(instance.domainName, deps.shutdownTimeoutMs);
            await deps.operations.appendStep(operationId, 'shutdown', { forced: r.forced });
            await setState(deps, instance.id, ['stopping'], 'stopped', { domid: null });
            break;
          }
          case 'start': {
            const listed = await xen.listDomains();
            if (!listed.some((d) => d.name === instance.domainName)) {
              const refs = await deps.uow.run(async (tx) => ({
                image: loaded.request.imageId ? await tx.images.get(loaded.request.imageId) : undefined,
                network: loaded.request.networkId
                  ? await tx.networks.get(loaded.request.networkId)
                  : undefined,
              }));
              const [vg, lv] = instance.diskVolume?.split('/') ?? [];
              if (!refs.image || !refs.network || !vg || !lv)
                throw new DomainError('NotFound', 'the instance image, network or disk is gone', {
                  instanceId: instance.id,
                });
              await xen.createDomain(
                domainConfig(loaded.request, instance, refs.image, refs.network, vg, lv),
              );
            }
            const domain = (await xen.listDomains()).find((d) => d.name === instance.domainName);
            if (!domain)
              throw new DomainError('XlCommandError', 'the domain is not in xl list after create', {});
            await setState(deps, instance.id, ['stopped'], 'running', { domid: domain.domid });
            break;
          }
          case 'reboot':
            await xen.rebootDomain(instance.domainName);
            break;
          case 'decommission':
            await decommission(deps, instance, xen, loaded.host.id);
            break;
          default:
            throw new DomainError('ValidationFailed', 'unknown instance action', { action });
        }
      });
      await deps.operations.finish(operationId, 'succeeded');
    } catch (error) {
      if (isDomainError(error) && error.transient && attempt < deps.maxAttempts) throw error;
      const failure = describe(error);
      deps.log.warn('instance action failed', { operationId, action, error: failure });
      // A failed stop leaves the domain running; a failed decommission stays decommissioning for a retry.
      if (action === 'stop')
        await setState(deps, instance.id, ['stopping'], 'running', {}).catch(() => undefined);
      await deps.operations.finish(operationId, 'failed', failure);
      await deps.uow.run((tx) =>
        tx.audit.append({
          actor: SYSTEM,
          action: `instance.${action}.fail`,
          objectType: 'instance',
          objectId: instance.id,
          after: { operationId, error: failure },
        }),
      );
    }
  };
}

/** Destroy, remove config and disk, then free the address only once `xl list` no longer shows the domain. */
async function decommission(
  deps: InstanceActionDeps,
  instance: InstanceRecord,
  xen: XenHost,
  hostId: string,
): Promise<void> {
  await xen.destroyDomain(instance.domainName);
  await xen.removeDomainConfig(instance.domainName);
  const [vg, lv] = instance.diskVolume?.split('/') ?? [];
  if (vg && lv) await xen.removeVolume(vg, lv);
  if ((await xen.listDomains()).some((d) => d.name === instance.domainName))
    throw new DomainError('Conflict', 'the domain is still listed after destroy', {
      domain: instance.domainName,
    });
  // After the domain is confirmed gone and before the address is freed: targets still get the IP.
  const clean = deps.deregistration
    ? await deps.deregistration.begin({
        event: 'instance.decommissioned',
        instanceId: instance.id,
        name: instance.name,
        domainName: instance.domainName,
        ip: instance.ip,
        mac: instance.mac,
        labels: instance.labels,
        at: deps.clock.now().toISOString(),
      })
    : true;
  await deps.uow.run(async (tx) => {
    await tx.ipam.release({
      instanceId: instance.id,
      hostId,
      domainName: instance.domainName,
      evidence: 'not_listed',
      confirmedAt: deps.clock.now(),
    });
    // The domain is gone, so no guest holds its token any more: a beat with it is now a 401.
    const tokensRevoked = await tx.tokens.revokeAllForInstance(instance.id, deps.clock.now());
    if (tokensRevoked > 0)
      await tx.audit.append({
        actor: SYSTEM,
        action: 'instance.token-revoke',
        objectType: 'instance',
        objectId: instance.id,
        after: { tokensRevoked, reason: 'decommissioned' },
      });
    const i = await tx.instanceStore.get(instance.id);
    if (i?.state === 'decommissioning' && clean) {
      await tx.instanceStore.update(i.id, i.version, { state: 'decommissioned', domid: null });
      await tx.audit.append({
        actor: SYSTEM,
        action: 'instance.decommissioned',
        objectType: 'instance',
        objectId: i.id,
        before: { state: i.state },
        after: { state: 'decommissioned' },
      });
    }
  });
  // After the commit, and on every run: a retry after a failed bump (tokens already revoked,
  // none left to count) still reaches the caches. A failure here fails the job, which retries.
  await deps.revocations.revoked();
}

async function setState(
  deps: InstanceActionDeps,
  id: string,
  from: readonly InstanceState[],
  to: InstanceState,
  patch: InstancePatch,
): Promise<void> {
  await deps.uow.run(async (tx) => {
    const i = await tx.instanceStore.get(id);
    if (!i || !from.includes(i.state)) return;
    await tx.instanceStore.update(i.id, i.version, { ...patch, state: to });
    await tx.audit.append({
      actor: SYSTEM,
      action: 'instance.state',
      objectType: 'instance',
      objectId: id,
      before: { state: i.state },
      after: { state: to },
    });
  });
}
