import { DomainError, isDomainError, NotFound } from '../errors';
import { type RevocationNotifier } from '../identity/identity.port';
import { generateToken, hashSecret, INSTANCE_TOKEN_SCRYPT } from '../identity/token-secret';
import { type ImageRecord, type NetworkRecord } from '../inventory/catalogue.port';
import { endpointOf, type HostRecord } from '../inventory/host.port';
import { type JobHandler } from '../jobs';
import {
  type Clock,
  type DomainConfig,
  type Logger,
  type NoCloudSeed,
  type XenHost,
  type XenHostFactory,
} from '../ports';
import {
  type InstanceRecord,
  type VmRequestRecord,
  type VmRequestUnitOfWork,
} from '../vm-requests/vm-request.port';
import { type VmRequestService } from '../vm-requests/vm-request.service';
import {
  bootstrapKernelArgs,
  type GuestBootstrap,
  guestBootstrapFor,
  type GuestBootstrapOptions,
} from './guest-bootstrap';
import { FifoGate } from './fifo-gate';
import { type HostSlots } from './host-slots.port';
import { renderNoCloudSeed } from './nocloud-seed.renderer';

export interface ProvisionOptions {
  /** BullMQ's attempts for the job: the last attempt compensates even on a transient error. */
  maxAttempts: number;
  /** Consecutive failed provisions after which a host leaves placement. */
  blockHostAfter: number;
}

export interface ProvisionDeps {
  uow: VmRequestUnitOfWork;
  requests: VmRequestService;
  /** Undefined in a worker started without Xen access: the job waits (transient) for one that has it. */
  xen: XenHostFactory | undefined;
  limiter: HostSlots;
  clock: Clock;
  log: Logger;
  options: ProvisionOptions;
  /** The heartbeat URL and interval every guest is given with its token. */
  bootstrap: GuestBootstrapOptions;
  /** Told after compensation revoked the instance's token, so no API replica keeps it cached. */
  revocations: RevocationNotifier;
  /** Test hook: awaited before each step, so a chaos test can kill the worker at a chosen step. */
  beforeStep?: (step: ProvisionStep, requestId: string) => Promise<void>;
}

export type ProvisionStep =
  'place' | 'begin' | 'allocate-ip' | 'create-disk' | 'create-domain' | 'confirm' | 'mark-running';

const SYSTEM = 'system:provision';

/**
 * How many jobs of one worker do their start at once: place, begin and the address, four short
 * transactions. When a burst of jobs starts together, taking them a few at a time in arrival
 * order lets the first ones reach their hosts in milliseconds; all at once, every job advances
 * in lockstep through the connection pool and the first `xl create` waits for nearly all of
 * them (bench/provision).
 */
const STARTING_AT_ONCE = 4;

/** Everything a reconcile pass needs, re-read from Postgres on every run. */
interface Target {
  request: VmRequestRecord;
  instance: InstanceRecord;
  host: HostRecord;
  image: ImageRecord;
  network: NetworkRecord;
}

/**
 * VmProvision: a reconcile, not a script. Every step looks at what exists (allocation, volume,
 * domain) before acting, so a retried job, or one resumed after its worker died at any point,
 * converges on one domain, one volume and one address. A permanent failure compensates by the
 * same rule (remove what exists, in reverse) and records the hypervisor's error on the request;
 * a transient one (host unreachable, timeout) is thrown for BullMQ's backoff until the last attempt.
 */
export function handleVmProvision(deps: ProvisionDeps): JobHandler<'VmProvision'> {
  const starting = new FifoGate(STARTING_AT_ONCE);
  return async ({ requestId }, { attempt }) => {
    // Before the gate: a test paused here holds no place in it, and a bench sees the job start.
    await deps.beforeStep?.('place', requestId);
    const started = await starting.enter();
    try {
      await provision(deps, requestId, attempt, started);
    } finally {
      started();
    }
  };
}

/** One run of the job; `started` gives up the start gate once the job waits only on its host. */
async function provision(
  deps: ProvisionDeps,
  requestId: string,
  attempt: number,
  started: () => void,
): Promise<void> {
  const target = await begin(deps, requestId);
  if (!target) return;
  const xen = deps.xen;
  if (!xen) throw new DomainError('DependencyUnavailable', 'this worker has no Xen transport configured');
  const host = xen.forHost(endpointOf(target.host));
  // The per-host slot is held only around calls to the host (inside reconcile and compensate):
  // database work and the token hash must not keep another provision off an idle host.
  const slot = <T>(work: () => Promise<T>): Promise<T> =>
    deps.limiter.run(target.host.id, perHostCap(target.host), work);
  // A previous run already decided this request fails: finish undoing, never build forward.
  if (target.request.error !== null) {
    started();
    return slot(() => compensate(deps, target, host, target.request.error!));
  }
  try {
    await reconcile(deps, target, host, slot, started);
  } catch (error) {
    started();
    if (error instanceof ConcurrentRun || (isDomainError(error) && error.code === 'InvalidTransition')) {
      deps.log.info('provision raced another run of itself; leaving it to the queue', { requestId });
      throw error;
    }
    const transient = isDomainError(error) && error.transient;
    if (transient && attempt < deps.options.maxAttempts) {
      deps.log.warn('provision step failed; will retry', { requestId, attempt, error: describe(error) });
      throw error;
    }
    const failure = describe(error);
    deps.log.warn('provision failed; compensating', { requestId, attempt, error: failure });
    await deps.uow.run(async (tx) => {
      const r = await tx.requests.get(requestId);
      if (r?.state === 'provisioning') await tx.requests.update(r.id, r.version, { error: failure });
      const { blocked } = await tx.provisionCounter.recordProvisionResult(
        target.host.id,
        false,
        deps.options.blockHostAfter,
      );
      if (blocked)
        await tx.audit.append({
          actor: SYSTEM,
          action: 'host.placement-block',
          objectType: 'host',
          objectId: target.host.id,
          reason: `${deps.options.blockHostAfter} provisions failed in a row`,
          after: { lastError: failure },
        });
    });
    await slot(() => compensate(deps, target, host, failure));
  }
}

/**
 * Placement (its own short transaction, so the placement lock is not held while the instance
 * row is written), then approved → provisioning with its instance row in one transaction; or
 * the run already begun.
 */
async function begin(deps: ProvisionDeps, requestId: string): Promise<Target | undefined> {
  // A burst's first job places the others with it: theirs is one read, not a transaction.
  const seen = await deps.uow.read((reads) => reads.requests.get(requestId));
  const placed =
    seen?.state === 'approved' && seen.hostId === null
      ? await deps.uow.run(async (tx) => {
          const r = await tx.requests.get(requestId);
          return r ? deps.requests.place(tx, r) : undefined;
        })
      : seen;
  // Gone, cancelled, rejected, failed (no host fits) or running: nothing left for this job to do.
  if (!placed || (placed.state !== 'approved' && placed.state !== 'provisioning')) return undefined;
  await deps.beforeStep?.('begin', requestId);
  return deps.uow.run(async (tx) => {
    let request = await tx.requests.get(requestId);
    if (!request || (request.state !== 'approved' && request.state !== 'provisioning')) return undefined;
    if (request.hostId === null)
      throw new DomainError('Conflict', 'an approved request without a host', { requestId });
    // An approved request has no instance yet: the row is written with the move to
    // provisioning, below, and a request never moves back (see the transition table).
    let instance = request.state === 'approved' ? undefined : await tx.instanceStore.getByRequest(requestId);
    if (request.state === 'approved') {
      request = await deps.requests.transition(tx, request, 'provisioning', SYSTEM, 'provision job started');
      instance ??= await tx.instanceStore.create({
        vmRequestId: request.id,
        name: request.name,
        ownerId: request.ownerId,
        hostId: request.hostId!,
        domainName: request.name,
        lifecycleClass: request.lifecycleClass,
        labels: request.labels,
        heartbeatTimeoutS: request.heartbeatTimeoutS,
      });
      await tx.audit.append({
        actor: SYSTEM,
        action: 'instance.create',
        objectType: 'instance',
        objectId: instance.id,
        after: { name: instance.name, hostId: instance.hostId, state: instance.state },
      });
    }
    if (!instance)
      throw new DomainError('Conflict', 'a provisioning request without an instance', { requestId });
    const host = await tx.hosts.get(request.hostId!);
    const image = request.imageId ? await tx.images.get(request.imageId) : undefined;
    const network = request.networkId ? await tx.networks.get(request.networkId) : undefined;
    if (!host) throw new NotFound('host', request.hostId!);
    if (!image) throw new NotFound('image', request.imageId ?? '');
    if (!network) throw new NotFound('network', request.networkId ?? '');
    return { request, instance, host, image, network };
  });
}

async function reconcile(
  deps: ProvisionDeps,
  t: Target,
  host: XenHost,
  slot: <T>(work: () => Promise<T>) => Promise<T>,
  started: () => void,
): Promise<void> {
  const { request, image, network } = t;
  const step = (s: ProvisionStep) => deps.beforeStep?.(s, request.id) ?? Promise.resolve();

  await step('allocate-ip');
  const golden = goldenFor(image, t.host);
  const volume = `${t.instance.domainName}-disk0`;
  // The address and the volume's name are recorded before the volume is created, not after: a
  // Postgres write inside the slot would keep the host idle while it waits for a connection
  // (bench/provision showed slots sitting free), and compensation removes a recorded volume
  // that was never made as a no-op.
  let instance = await recordAddress(deps, t.instance, network.id, `${golden.vg}/${volume}`);
  started();
  // Hashed before the slot: scrypt must not hold a host's provisioning slot.
  const fresh = generateToken();
  const freshHash = await hashSecret(fresh.secret, INSTANCE_TOKEN_SCRYPT);
  const domain = await slot(async () => {
    await step('create-disk');
    const existing = await host.logicalVolumes(golden.vg);
    if (!existing.some((lv) => lv.name === volume))
      await host.createVolume({
        vg: golden.vg,
        name: volume,
        sizeMb: request.diskGb * 1024,
        snapshotOf: golden.lv,
      });

    await step('create-domain');
    const listed = await host.listDomains();
    if (!listed.some((d) => d.name === instance.domainName)) {
      // The guest's token is stored before `xl create` and only then handed to the host, and a
      // new one is issued (the older ones revoked) exactly when no domain exists yet: whatever
      // run created the domain, the token it booted with is the one Norm accepts. A run that
      // finds the domain already there changes nothing.
      instance = await issueInstanceToken(deps, instance, fresh.prefix, freshHash);
      const bootstrap = guestBootstrapFor(deps.bootstrap, instance.id, fresh.token, network, instance.ip);
      await host.createDomain(
        domainConfig(request, instance, image, network, golden.vg, volume, bootstrap),
        guestSeed(image, instance, bootstrap),
      );
    }

    await step('confirm');
    const found = (await host.listDomains()).find((d) => d.name === instance.domainName);
    if (!found)
      throw new DomainError('XlCommandError', 'xl create returned but the domain is not in xl list', {
        host: t.host.name,
        domain: instance.domainName,
      });
    return found;
  });

  await step('mark-running');
  await deps.uow.run(async (tx) => {
    // The domain runs: the host's run of failures, if any, ends here.
    await tx.provisionCounter.recordProvisionResult(t.host.id, true, deps.options.blockHostAfter);
    const r = await tx.requests.get(request.id);
    const i = await tx.instanceStore.get(instance.id);
    if (!r || !i || r.state !== 'provisioning') return;
    const running = await tx.instanceStore.update(i.id, i.version, {
      state: 'running',
      domid: domain.domid,
    });
    if (!running)
      throw new DomainError('Conflict', 'the instance changed concurrently', { instanceId: i.id });
    await deps.requests.transition(tx, r, 'running', SYSTEM, 'domain running', { stateReason: null });
    await tx.audit.append({
      actor: SYSTEM,
      action: 'instance.running',
      objectType: 'instance',
      objectId: i.id,
      after: { hostId: i.hostId, domainName: i.domainName, domid: domain.domid, ip: i.ip, mac: i.mac },
    });
  });
  deps.log.info('instance running', { requestId: request.id, instanceId: instance.id, host: t.host.name });
}

/**
 * Undo in reverse, judged by what exists rather than by what this run did (a resumed job
 * cannot know what a dead worker finished): the domain first, because its disk and address are
 * in use while it lives; the address last and only once `xl list` confirms the domain is gone,
 * since a reused IP would otherwise reach a still-running VM.
 */
async function compensate(
  deps: ProvisionDeps,
  t: Target,
  host: XenHost,
  failure: Record<string, unknown>,
): Promise<void> {
  const name = t.instance.domainName;
  await host.destroyDomain(name);
  await host.removeDomainConfig(name);
  if (t.instance.diskVolume !== null || t.image.goldenVolumes.length > 0) {
    const golden = goldenOrUndefined(t.image, t.host);
    const [vg, lv] = t.instance.diskVolume?.split('/') ?? [golden?.vg, `${name}-disk0`];
    if (vg && lv) await host.removeVolume(vg, lv);
  }
  const stillThere = (await host.listDomains()).some((d) => d.name === name);
  if (stillThere)
    throw new DomainError('Conflict', 'the domain is still listed after destroy; addresses stay held', {
      host: t.host.name,
      domain: name,
    });
  await deps.uow.run(async (tx) => {
    await tx.ipam.release({
      instanceId: t.instance.id,
      hostId: t.host.id,
      domainName: name,
      evidence: 'not_listed',
      confirmedAt: deps.clock.now(),
    });
    const r = await tx.requests.get(t.request.id);
    const i = await tx.instanceStore.get(t.instance.id);
    // The domain is gone, so no guest holds its token any more.
    await tx.tokens.revokeAllForInstance(t.instance.id, deps.clock.now());
    if (i && i.state === 'provisioning') await tx.instanceStore.update(i.id, i.version, { state: 'failed' });
    if (r && r.state === 'provisioning') {
      const reason = typeof failure.message === 'string' ? failure.message : 'provisioning failed';
      await deps.requests.transition(tx, r, 'failed', SYSTEM, reason, {
        stateReason: reason,
        error: failure,
      });
      await tx.audit.append({
        actor: SYSTEM,
        action: 'vm-request.fail',
        objectType: 'vm-request',
        objectId: r.id,
        after: { state: 'failed', error: failure },
        reason,
      });
    }
  });
  // A guest that beat before the failure has its token in some replica's cache.
  await deps.revocations.revoked();
}

/**
 * Replaces the instance's token: the older ones are revoked and the new hash recorded, in one
 * transaction with a version check, so of two racing runs only one hands a token to the host.
 * Only the hash is stored and audited; the clear token goes nowhere but the domain config.
 */
async function issueInstanceToken(
  deps: ProvisionDeps,
  i: InstanceRecord,
  prefix: string,
  secretHash: string,
): Promise<InstanceRecord> {
  return deps.uow.run(async (tx) => {
    const current = await tx.instanceStore.get(i.id);
    if (!current || current.state !== 'provisioning' || current.version !== i.version)
      throw new ConcurrentRun(i.id);
    const revoked = await tx.tokens.revokeAllForInstance(i.id, deps.clock.now());
    const token = await tx.tokens.create({
      kind: 'instance',
      principalId: null,
      instanceId: i.id,
      name: `instance ${i.id}`,
      prefix,
      secretHash,
      expiresAt: null,
      createdBy: SYSTEM,
    });
    const updated = await tx.instanceStore.update(i.id, i.version, { instanceTokenHash: secretHash });
    if (!updated) throw new ConcurrentRun(i.id);
    await tx.audit.append({
      actor: SYSTEM,
      action: 'instance.token-issue',
      objectType: 'instance',
      objectId: i.id,
      // The token row's id only: neither the secret nor its lookup prefix is audited.
      after: { tokenId: token.id, revokedEarlier: revoked },
    });
    return updated;
  });
}

/**
 * Allocates the instance's address (idempotent per network and instance: a rerun gets the same
 * pair back) and records it with the disk volume's name, in one transaction.
 */
async function recordAddress(
  deps: ProvisionDeps,
  i: InstanceRecord,
  networkId: string,
  diskVolume: string,
): Promise<InstanceRecord> {
  const { alloc, updated } = await deps.uow.run(async (tx) => {
    const alloc = await tx.ipam.allocate(networkId, i.id);
    if (i.ip === alloc.ip && i.mac === alloc.mac && i.diskVolume === diskVolume) return { alloc, updated: i };
    return {
      alloc,
      updated: await tx.instanceStore.update(i.id, i.version, { ip: alloc.ip, mac: alloc.mac, diskVolume }),
    };
  });
  return updated ?? patchInstance(deps, i, { ip: alloc.ip, mac: alloc.mac, diskVolume });
}

/**
 * The patch is idempotent (same address, same volume), so a version lost to a concurrent run of
 * the same job is re-read and re-applied rather than treated as a failure.
 */
async function patchInstance(
  deps: ProvisionDeps,
  i: InstanceRecord,
  patch: { ip: string; mac: string; diskVolume: string },
): Promise<InstanceRecord> {
  let current = i;
  for (let tries = 0; tries < 5; tries++) {
    const reread = await deps.uow.run((tx) => tx.instanceStore.get(i.id));
    if (!reread || reread.state !== 'provisioning') throw new ConcurrentRun(i.id);
    current = reread;
    const updated = await deps.uow.run((tx) => tx.instanceStore.update(current.id, current.version, patch));
    if (updated) return updated;
  }
  throw new ConcurrentRun(i.id);
}

/**
 * Another run of the same request moved the rows under this one. Never compensated: the other
 * run may be finishing the domain. The queue retries, and the retry sees the outcome.
 */
class ConcurrentRun extends DomainError {
  constructor(instanceId: string) {
    super('Conflict', 'another run of this provision changed the instance', {
      instanceId,
      concurrentRun: true,
    });
  }
}

function goldenOrUndefined(image: ImageRecord, host: HostRecord): { vg: string; lv: string } | undefined {
  const vgs = new Set(host.volumeGroups.map((v) => v.name));
  return (
    image.goldenVolumes.find((g) => g.hostId === host.id) ??
    image.goldenVolumes.find((g) => g.hostId === undefined && vgs.has(g.vg))
  );
}

function goldenFor(image: ImageRecord, host: HostRecord): { vg: string; lv: string } {
  const golden = goldenOrUndefined(image, host);
  if (!golden)
    throw new DomainError('NotFound', 'the image has no golden volume on the chosen host', {
      imageId: image.id,
      host: host.name,
    });
  return golden;
}

export function domainConfig(
  r: VmRequestRecord,
  i: InstanceRecord,
  image: ImageRecord,
  network: NetworkRecord,
  vg: string,
  volume: string,
  bootstrap?: GuestBootstrap,
): DomainConfig {
  // Kernel-boot images get the bootstrap words after the image's own arguments; disk-boot
  // (pygrub) images take their command line from the guest's grub menu and get the same data
  // on a seed volume instead (guestSeed), see README "Guest bootstrap data".
  const kernelArgs = (own: string | null | undefined): string =>
    [own, bootstrap ? bootstrapKernelArgs(bootstrap) : undefined].filter((a): a is string => !!a).join(' ');
  return {
    name: i.domainName,
    uuid: i.id,
    vcpus: r.vcpus,
    memoryMb: r.memoryMb,
    boot:
      image.boot.method === 'pygrub'
        ? { kind: 'pygrub' }
        : {
            kind: 'kernel',
            kernel: image.boot.kernel,
            ...(image.boot.ramdisk ? { ramdisk: image.boot.ramdisk } : {}),
            ...(kernelArgs(image.boot.kernelArgs) ? { extra: kernelArgs(image.boot.kernelArgs) } : {}),
          },
    disks: [{ target: `/dev/${vg}/${volume}`, vdev: 'xvda', access: 'rw' }],
    vifs: [{ mac: i.mac ?? '', bridge: network.bridge, ...(i.ip ? { ip: i.ip } : {}) }],
    onPoweroff: 'destroy',
    onReboot: 'restart',
    onCrash: 'destroy',
  };
}

/**
 * The NoCloud seed for a disk-boot (pygrub) image, whose kernel command line Norm cannot set;
 * none for a kernel-boot image, which has its bootstrap in `extra=`. cloud-init in the image
 * reads it on first boot.
 */
export function guestSeed(
  image: ImageRecord,
  i: InstanceRecord,
  bootstrap: GuestBootstrap,
): NoCloudSeed | undefined {
  if (image.boot.method !== 'pygrub') return undefined;
  return renderNoCloudSeed(bootstrap, { instanceId: i.id, hostname: i.name, mac: i.mac });
}

/** hosts.limits.provisionConcurrency overrides the fleet default for one host. */
export function perHostCap(host: HostRecord): number | undefined {
  const value = (host.limits as Record<string, unknown>).provisionConcurrency;
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

/** The hypervisor's error as the requester and the audit see it: code, message, host, argv, exit code, stderr. */
export function describe(error: unknown): Record<string, unknown> {
  if (isDomainError(error)) return { code: error.code, message: error.message, ...error.details };
  return { code: 'Internal', message: error instanceof Error ? error.message : String(error) };
}
