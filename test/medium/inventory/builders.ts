import { type HostObservation, type NewHost } from '@norm/core';
import { type DataSource } from 'typeorm';

/** Test data for the inventory tiers: sensible defaults, override what the test is about. */
export function aHost(over: Partial<NewHost> = {}): NewHost {
  return {
    name: `xen-${Math.random().toString(36).slice(2, 8)}`,
    address: '127.0.0.1',
    port: 22,
    sshUser: 'norm',
    sudo: false,
    hostKeyFingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    labels: {},
    limits: {},
    ...over,
  };
}

export function anObservation(over: Partial<HostObservation> = {}): HostObservation {
  return {
    totalMemoryMb: 65_536,
    freeMemoryMb: 16_384,
    nrCpus: 16,
    xenVersion: '4.17.3',
    storageTotalMb: 1_000_000,
    storageFreeMb: 500_000,
    volumeGroups: [{ name: 'vg0', sizeMb: 1_000_000, freeMb: 500_000 }],
    domains: [],
    ...over,
  };
}

export interface RequestRowInput {
  memoryMb?: number;
  vcpus?: number;
  diskGb?: number;
  state?: string;
  hostId?: string | null;
  group?: string | null;
  ownerId?: string;
}

export async function insertVmRequest(ds: DataSource, r: RequestRowInput = {}): Promise<string> {
  const rows: Array<{ id: string }> = await ds.query(
    `INSERT INTO "vm_requests" ("name", "owner_id", "vcpus", "memory_mb", "disk_gb", "lifecycle_class", "state",
       "host_id", "anti_affinity_group")
     VALUES ($1, COALESCE($8::uuid, gen_random_uuid()), $2, $3, $4, 'cattle', $5, $6, $7) RETURNING "id"`,
    [
      `vm-${Math.random().toString(36).slice(2, 8)}`,
      r.vcpus ?? 1,
      r.memoryMb ?? 1024,
      r.diskGb ?? 10,
      r.state ?? 'approved',
      r.hostId ?? null,
      r.group ?? null,
      r.ownerId ?? null,
    ],
  );
  return rows[0]!.id;
}

export async function insertInstance(
  ds: DataSource,
  i: {
    hostId: string | null;
    domainName: string;
    state?: string;
    requestId?: string;
    group?: string | null;
    lifecycleClass?: 'cattle' | 'pet';
    ownerId?: string;
  },
): Promise<string> {
  const requestId =
    i.requestId ??
    (await insertVmRequest(ds, { state: 'running', hostId: i.hostId, group: i.group ?? null }));
  const rows: Array<{ id: string }> = await ds.query(
    `INSERT INTO "instances" ("vm_request_id", "name", "owner_id", "host_id", "domain_name", "lifecycle_class", "state")
     VALUES ($1, $2, COALESCE($6::uuid, gen_random_uuid()), $3, $2, $5, $4) RETURNING "id"`,
    [
      requestId,
      i.domainName,
      i.hostId,
      i.state ?? 'running',
      i.lifecycleClass ?? 'cattle',
      i.ownerId ?? null,
    ],
  );
  return rows[0]!.id;
}
