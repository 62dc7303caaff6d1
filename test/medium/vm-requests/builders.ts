import { randomUUID } from 'node:crypto';
import {
  type ActingContext,
  grantsForRoles,
  type HostRecord,
  type ImageRecord,
  type NetworkRecord,
  type Role,
  type VmRequestInput,
  type VmRequestServiceOptions,
} from '@norm/core';
import { HostRepository, PgVmRequestUnitOfWork } from '@norm/inventory';
import { type DataSource } from 'typeorm';
import { aHost, anObservation } from '../inventory/builders';

/** The request service's size bounds and placement settings the medium tests share. */
export const SERVICE_OPTIONS: VmRequestServiceOptions = {
  bounds: { maxVcpus: 16, minMemoryMb: 128, maxMemoryMb: 65_536, maxDiskGb: 500 },
  placement: { strategy: 'spread', dom0ReserveMb: 1024, vcpuOvercommitRatio: 4, antiAffinityMode: 'hard' },
};

/** An acting principal without a database row: the domain only needs its id, roles and groups. */
export function aPrincipal(roles: Role[] = ['requester'], groups: string[] = []): ActingContext {
  const id = randomUUID();
  return {
    subject: {
      kind: 'principal',
      principal: { id, kind: 'person', name: `p-${id.slice(0, 8)}`, roles, groups, createdAt: new Date() },
      tokenId: randomUUID(),
      grants: grantsForRoles(roles),
    },
    requestId: null,
  };
}

export function ownerOf(ctx: ActingContext): string {
  if (ctx.subject.kind !== 'principal') throw new Error('not a principal');
  return ctx.subject.principal.id;
}

export interface Catalogue {
  image: ImageRecord;
  network: NetworkRecord;
}

let netSeq = 0;

/** An image whose golden volume is the simulator's default (`vg0/golden-tiny`) and a fresh /24. */
export async function aCatalogue(
  ds: DataSource,
  boot: ImageRecord['boot'] = { method: 'pygrub' },
): Promise<Catalogue> {
  const uow = new PgVmRequestUnitOfWork(ds);
  const n = (process.pid % 100) + netSeq++;
  return uow.run(async (tx) => ({
    image: await tx.images.create({
      name: `img-${randomUUID().slice(0, 8)}`,
      osLabel: 'CentOS 7',
      boot,
      defaultDiskGb: 1,
      goldenVolumes: [{ vg: 'vg0', lv: 'golden-tiny' }],
    }),
    network: await tx.networks.create({
      name: `net-${randomUUID().slice(0, 8)}`,
      bridge: 'xenbr0',
      cidr: `10.${100 + (n % 100)}.${n % 250}.0/24`,
      gateway: `10.${100 + (n % 100)}.${n % 250}.1`,
      rangeStart: `10.${100 + (n % 100)}.${n % 250}.10`,
      rangeEnd: `10.${100 + (n % 100)}.${n % 250}.250`,
    }),
  }));
}

export function aRequest(c: Catalogue, over: Partial<VmRequestInput> = {}): VmRequestInput {
  return {
    name: `vm-${randomUUID().slice(0, 8)}`,
    vcpus: 1,
    memoryMb: 256,
    diskGb: 1,
    imageId: c.image.id,
    networkId: c.network.id,
    lifecycleClass: 'cattle',
    ...over,
  };
}

/** Registers a host row for a simulated (or imaginary) host, online with room for small VMs. */
/** The host row that registers a simulated host (its address, port, user and pinned key), as an operator would. */
export function aSimHostRow(
  ds: DataSource,
  sim: { name: string; address: string; port: number; user: string; fingerprint: string },
): Promise<HostRecord> {
  return aHostRow(ds, {
    name: sim.name,
    address: sim.address,
    port: sim.port,
    user: sim.user,
    fingerprint: sim.fingerprint,
  });
}

export async function aHostRow(
  ds: DataSource,
  over: { name?: string; address?: string; port?: number; user?: string; fingerprint?: string } = {},
): Promise<HostRecord> {
  return new HostRepository(ds.manager).create(
    aHost({
      ...(over.name ? { name: over.name } : {}),
      ...(over.address ? { address: over.address } : {}),
      ...(over.port ? { port: over.port } : {}),
      ...(over.user ? { sshUser: over.user } : {}),
      ...(over.fingerprint ? { hostKeyFingerprint: over.fingerprint } : {}),
    }),
    anObservation({ freeMemoryMb: 14_000, totalMemoryMb: 16_383, nrCpus: 4 }),
    new Date(),
  );
}
