import {
  Conflict,
  type HostDetached,
  type HostLimits,
  type HostObservation,
  type HostPatch,
  type HostRecord,
  type HostStatus,
  type HostStore,
  type HostSyncSuccess,
  type HostSyncTarget,
  type NewHost,
  type ObservedDomain,
  type VolumeGroup,
} from '@norm/core';
import { type EntityManager } from 'typeorm';
import { isForeignKeyViolation, isUniqueViolation, rowsOf } from '../pg-errors';
import { IN_FLIGHT_REQUEST, LIVE_INSTANCE } from './host-presence';

interface HostRow {
  id: string;
  name: string;
  address: string;
  port: number;
  ssh_user: string;
  sudo: boolean;
  host_key_fingerprint: string;
  labels: Record<string, string>;
  status: HostStatus;
  maintenance: boolean;
  placement_blocked_reason: string | null;
  consecutive_sync_failures: number;
  limits: HostLimits;
  total_memory_mb: number | null;
  free_memory_mb: number | null;
  nr_cpus: number | null;
  xen_version: string | null;
  storage_total_mb: string | null;
  storage_free_mb: string | null;
  volume_groups: VolumeGroup[];
  observed_domains: ObservedDomain[];
  last_sync_at: Date | null;
  last_sync_error: string | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = `"id", "name", "address", "port", "ssh_user", "sudo", "host_key_fingerprint", "labels", "status",
  "maintenance", "placement_blocked_reason", "consecutive_sync_failures", "limits", "total_memory_mb",
  "free_memory_mb", "nr_cpus", "xen_version", "storage_total_mb", "storage_free_mb", "volume_groups",
  "observed_domains", "last_sync_at", "last_sync_error", "created_at", "updated_at"`;

/** Hosts on Postgres. Works on whatever manager it is given: the data source's or a transaction's. */
export class HostRepository implements HostStore {
  constructor(private readonly manager: EntityManager) {}

  async create(host: NewHost, o: HostObservation, at: Date): Promise<HostRecord> {
    try {
      const rows: HostRow[] = await this.manager.query(
        `INSERT INTO "hosts" ("name", "address", "port", "ssh_user", "sudo", "host_key_fingerprint", "labels",
           "limits", "status", "total_memory_mb", "free_memory_mb", "nr_cpus", "xen_version", "storage_total_mb",
           "storage_free_mb", "volume_groups", "observed_domains", "last_sync_at")
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'online', $9, $10, $11, $12, $13, $14, $15, $16, $17)
         RETURNING ${COLUMNS}`,
        [
          host.name,
          host.address,
          host.port,
          host.sshUser,
          host.sudo,
          host.hostKeyFingerprint,
          JSON.stringify(host.labels),
          JSON.stringify(host.limits),
          ...observationParams(o),
          at,
        ],
      );
      return toRecord(first(rows));
    } catch (err) {
      if (isUniqueViolation(err, 'uq_hosts_name'))
        throw new Conflict('a host with this name exists', { name: host.name });
      throw err;
    }
  }

  async get(id: string, options: { forUpdate?: boolean } = {}): Promise<HostRecord | undefined> {
    const rows: HostRow[] = await this.manager.query(
      `SELECT ${COLUMNS} FROM "hosts" WHERE "id" = $1${options.forUpdate ? ' FOR UPDATE' : ''}`,
      [id],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async list(): Promise<HostRecord[]> {
    const rows: HostRow[] = await this.manager.query(`SELECT ${COLUMNS} FROM "hosts" ORDER BY "name"`);
    return rows.map(toRecord);
  }

  async listForSync(): Promise<HostSyncTarget[]> {
    const rows: Array<
      Pick<
        HostRow,
        'id' | 'name' | 'address' | 'port' | 'ssh_user' | 'sudo' | 'host_key_fingerprint' | 'status'
      >
    > = await this.manager.query(
      `SELECT "id", "name", "address", "port", "ssh_user", "sudo", "host_key_fingerprint", "status"
         FROM "hosts" ORDER BY "name"`,
    );
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      address: r.address,
      port: r.port,
      sshUser: r.ssh_user,
      sudo: r.sudo,
      hostKeyFingerprint: r.host_key_fingerprint,
      status: r.status,
    }));
  }

  async update(id: string, patch: HostPatch): Promise<HostRecord | undefined> {
    const rows: unknown = await this.manager.query(
      `UPDATE "hosts" SET
         "labels" = COALESCE($2::jsonb, "labels"),
         "limits" = COALESCE($3::jsonb, "limits"),
         "placement_blocked_reason" = CASE WHEN $4::boolean THEN $5 ELSE "placement_blocked_reason" END,
         -- Clearing a block starts the count again: otherwise the next single failure re-blocks the host.
         "consecutive_provision_failures" = CASE WHEN $4::boolean AND $5::text IS NULL THEN 0
           ELSE "consecutive_provision_failures" END,
         "version" = "version" + 1, "updated_at" = now()
       WHERE "id" = $1 RETURNING ${COLUMNS}`,
      [
        id,
        patch.labels === undefined ? null : JSON.stringify(patch.labels),
        patch.limits === undefined ? null : JSON.stringify(patch.limits),
        patch.placementBlockedReason !== undefined,
        patch.placementBlockedReason ?? null,
      ],
    );
    return updated(rows);
  }

  async setMaintenance(id: string, on: boolean): Promise<HostRecord | undefined> {
    const rows: unknown = await this.manager.query(
      `UPDATE "hosts" SET "maintenance" = $2, "version" = "version" + 1, "updated_at" = now()
       WHERE "id" = $1 RETURNING ${COLUMNS}`,
      [id, on],
    );
    return updated(rows);
  }

  /**
   * Detaches only finished rows, so a live instance or an in-flight request the caller did not
   * see keeps the foreign key (ON DELETE RESTRICT) and the delete fails as a Conflict instead
   * of leaving something running on a host Norm forgot.
   */
  async delete(id: string): Promise<HostDetached | undefined> {
    const [, instances] = await this.manager.query<[unknown, number]>(
      `UPDATE "instances" SET "host_id" = NULL WHERE "host_id" = $1 AND "state" NOT IN ${LIVE_INSTANCE}`,
      [id],
    );
    const [, requests] = await this.manager.query<[unknown, number]>(
      `UPDATE "vm_requests" SET "host_id" = NULL WHERE "host_id" = $1 AND "state" NOT IN ${IN_FLIGHT_REQUEST}`,
      [id],
    );
    try {
      const [, deleted] = await this.manager.query<[unknown, number]>(`DELETE FROM "hosts" WHERE "id" = $1`, [
        id,
      ]);
      return deleted === 1 ? { instances, requests } : undefined;
    } catch (err) {
      if (
        isForeignKeyViolation(err, 'fk_instances_host') ||
        isForeignKeyViolation(err, 'fk_vm_requests_host')
      )
        throw new Conflict('host still has live instances or requests in flight', { hostId: id });
      throw err;
    }
  }

  /**
   * One UPDATE … FROM (VALUES …) for the batch: one round trip and one commit however many
   * hosts answered together. A host deleted since it was listed simply matches no row.
   */
  async recordSyncSuccesses(batch: readonly HostSyncSuccess[]): Promise<void> {
    if (batch.length === 0) return;
    const params: unknown[] = [];
    const values = batch.map(({ hostId, observation, at }) => {
      const base = params.length;
      params.push(hostId, ...observationParams(observation), at);
      const p = (i: number): string => `$${base + i}`;
      return `(${p(1)}::uuid, ${p(2)}::integer, ${p(3)}::integer, ${p(4)}::integer, ${p(5)}::text,
        ${p(6)}::bigint, ${p(7)}::bigint, ${p(8)}::jsonb, ${p(9)}::jsonb, ${p(10)}::timestamptz)`;
    });
    await this.manager.query(
      `UPDATE "hosts" AS h SET "status" = 'online', "consecutive_sync_failures" = 0, "last_sync_error" = NULL,
         "total_memory_mb" = v."total_memory_mb", "free_memory_mb" = v."free_memory_mb", "nr_cpus" = v."nr_cpus",
         "xen_version" = v."xen_version", "storage_total_mb" = v."storage_total_mb",
         "storage_free_mb" = v."storage_free_mb", "volume_groups" = v."volume_groups",
         "observed_domains" = v."observed_domains", "last_sync_at" = v."at", "updated_at" = now()
       FROM (VALUES ${values.join(', ')}) AS v("id", "total_memory_mb", "free_memory_mb", "nr_cpus",
         "xen_version", "storage_total_mb", "storage_free_mb", "volume_groups", "observed_domains", "at")
       WHERE h."id" = v."id"`,
      params,
    );
  }

  /**
   * One statement, so the count and the status it implies cannot diverge even if two syncs
   * overlapped. Capacity and observed domains stay as last seen (and drift ignores them while
   * the host is unreachable); `last_sync_at` keeps meaning "when that view was read".
   */
  async recordSyncFailure(
    hostId: string,
    error: string,
    _at: Date,
    unreachableAfter: number,
  ): Promise<{ status: HostStatus; consecutiveFailures: number }> {
    const rows = rowsOf<{ status: HostStatus; consecutive_sync_failures: number }>(
      await this.manager.query(
        `UPDATE "hosts" SET "consecutive_sync_failures" = "consecutive_sync_failures" + 1, "last_sync_error" = $2,
         "status" = CASE WHEN "consecutive_sync_failures" + 1 >= $3 THEN 'unreachable' ELSE "status" END,
         "updated_at" = now()
       WHERE "id" = $1 RETURNING "status", "consecutive_sync_failures"`,
        [hostId, error.slice(0, 2000), unreachableAfter],
      ),
    );
    const row = rows[0];
    return row
      ? { status: row.status, consecutiveFailures: row.consecutive_sync_failures }
      : { status: 'unknown', consecutiveFailures: 0 };
  }
}

function observationParams(o: HostObservation): unknown[] {
  return [
    o.totalMemoryMb,
    o.freeMemoryMb,
    o.nrCpus,
    o.xenVersion,
    o.storageTotalMb,
    o.storageFreeMb,
    JSON.stringify(o.volumeGroups),
    JSON.stringify(o.domains),
  ];
}

function first<T>(rows: T[]): T {
  const row = rows[0];
  if (row === undefined) throw new Error('statement returned no row');
  return row;
}

function updated(result: unknown): HostRecord | undefined {
  const row = rowsOf<HostRow>(result)[0];
  return row ? toRecord(row) : undefined;
}

function toRecord(r: HostRow): HostRecord {
  return {
    id: r.id,
    name: r.name,
    address: r.address,
    port: r.port,
    sshUser: r.ssh_user,
    sudo: r.sudo,
    hostKeyFingerprint: r.host_key_fingerprint,
    labels: r.labels,
    status: r.status,
    maintenance: r.maintenance,
    placementBlockedReason: r.placement_blocked_reason,
    consecutiveSyncFailures: r.consecutive_sync_failures,
    limits: r.limits,
    totalMemoryMb: r.total_memory_mb,
    freeMemoryMb: r.free_memory_mb,
    nrCpus: r.nr_cpus,
    xenVersion: r.xen_version,
    storageTotalMb: r.storage_total_mb === null ? null : Number(r.storage_total_mb),
    storageFreeMb: r.storage_free_mb === null ? null : Number(r.storage_free_mb),
    volumeGroups: r.volume_groups,
    observedDomains: r.observed_domains,
    lastSyncAt: r.last_sync_at,
    lastSyncError: r.last_sync_error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
