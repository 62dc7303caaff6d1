import {
  type DriftInstance,
  type InstanceView,
  type InventoryTx,
  type InventoryUnitOfWork,
  type PlacementHost,
  type PlacementView,
} from '@norm/core';
import { type DataSource, type EntityManager } from 'typeorm';
import { PgAuditLog } from '../audit/audit.repository';
import { ImageRepository } from '../images/image.repository';
import { PgIpamStore } from '../ipam/ipam.repository';
import { NetworkRepository } from '../ipam/network.repository';
import { IN_FLIGHT_REQUEST, LIVE_INSTANCE } from './host-presence';
import { HostRepository } from './host.repository';
import { prepared, queryPrepared } from '../prepared';

class PgInstanceView implements InstanceView {
  constructor(private readonly manager: EntityManager) {}

  async listForDrift(hostId?: string): Promise<DriftInstance[]> {
    const rows: Array<{
      id: string;
      name: string;
      domain_name: string;
      host_id: string | null;
      state: string;
    }> = await this.manager.query(
      `SELECT "id", "name", "domain_name", "host_id", "state" FROM "instances"
         WHERE "state" IN ${LIVE_INSTANCE} AND ($1::uuid IS NULL OR "host_id" = $1)`,
      [hostId ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      domainName: r.domain_name,
      hostId: r.host_id,
      state: r.state,
    }));
  }

  async liveOnHost(hostId: string): Promise<{ instances: number; requests: number }> {
    const rows: Array<{ instances: number; requests: number }> = await this.manager.query(
      `SELECT (SELECT count(*)::int FROM "instances" WHERE "host_id" = $1 AND "state" IN ${LIVE_INSTANCE}) AS "instances",
              (SELECT count(*)::int FROM "vm_requests" WHERE "host_id" = $1 AND "state" IN ${IN_FLIGHT_REQUEST}) AS "requests"`,
      [hostId],
    );
    return { instances: rows[0]?.instances ?? 0, requests: rows[0]?.requests ?? 0 };
  }
}

interface CandidateRow {
  id: string;
  name: string;
  status: PlacementHost['status'];
  maintenance: boolean;
  placement_blocked_reason: string | null;
  free_memory_mb: number | null;
  nr_cpus: number | null;
  storage_free_mb: string | null;
  limits: PlacementHost['limits'];
  allocated_vcpus: number;
  promised_memory_mb: string;
  promised_vcpus: string;
  promised_disk_gb: string;
  group_members: number;
}

/**
 * Placement's whole read as one statement, summed where the rows are: one round trip under
 * the placement lock whatever the fleet's size, and no in-flight request or live instance
 * shipped to the process only to be counted there (two of the three reads this replaced grew
 * with every request in flight and every instance in the fleet).
 *
 * A reservation whose domain the last sync saw (`observed_domains` holds its name) is in
 * `free_memory` already and is not promised again; it still counts as a group member.
 */
const CANDIDATES = prepared(`
  SELECT h."id", h."name", h."status", h."maintenance", h."placement_blocked_reason", h."free_memory_mb",
         h."nr_cpus", h."storage_free_mb", h."limits",
         (SELECT coalesce(sum((d ->> 'vcpus')::int), 0) FROM jsonb_array_elements(h."observed_domains") d)::int
           AS "allocated_vcpus",
         coalesce(p."memory_mb", 0) AS "promised_memory_mb",
         coalesce(p."vcpus", 0) AS "promised_vcpus",
         coalesce(p."disk_gb", 0) AS "promised_disk_gb",
         (coalesce(p."members", 0) + coalesce(g."members", 0))::int AS "group_members"
  FROM "hosts" h
  LEFT JOIN LATERAL (
    SELECT sum(f."memory_mb") FILTER (WHERE NOT f."seen") AS "memory_mb",
           sum(f."vcpus") FILTER (WHERE NOT f."seen") AS "vcpus",
           sum(f."disk_gb") FILTER (WHERE NOT f."seen") AS "disk_gb",
           count(*) FILTER (WHERE f."anti_affinity_group" = $1::text) AS "members"
    FROM (
      SELECT r."memory_mb", r."vcpus", r."disk_gb", r."anti_affinity_group",
             (i."domain_name" IS NOT NULL
               AND h."observed_domains" @> jsonb_build_array(jsonb_build_object('name', i."domain_name"))) AS "seen"
      FROM "vm_requests" r LEFT JOIN "instances" i ON i."vm_request_id" = r."id"
      WHERE r."host_id" = h."id" AND r."state" IN ${IN_FLIGHT_REQUEST}
    ) f
  ) p ON true
  LEFT JOIN LATERAL (
    SELECT count(*) AS "members"
    FROM "instances" i JOIN "vm_requests" r ON r."id" = i."vm_request_id"
    WHERE $1::text IS NOT NULL AND i."host_id" = h."id" AND i."state" IN ${LIVE_INSTANCE}
      AND r."anti_affinity_group" = $1::text AND r."state" NOT IN ${IN_FLIGHT_REQUEST}
  ) g ON true
  ORDER BY h."name"`);

class PgPlacementView implements PlacementView {
  constructor(private readonly manager: EntityManager) {}

  async candidates(group: string | null): Promise<PlacementHost[]> {
    const rows = await queryPrepared<CandidateRow[]>(this.manager, CANDIDATES, [group]);
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      status: r.status,
      maintenance: r.maintenance,
      placementBlockedReason: r.placement_blocked_reason,
      freeMemoryMb: r.free_memory_mb,
      nrCpus: r.nr_cpus,
      storageFreeMb: r.storage_free_mb === null ? null : Number(r.storage_free_mb),
      allocatedVcpus: r.allocated_vcpus,
      promised: {
        memoryMb: Number(r.promised_memory_mb),
        vcpus: Number(r.promised_vcpus),
        diskMb: Number(r.promised_disk_gb) * 1024,
      },
      groupMembers: group === null ? {} : { [group]: r.group_members },
      limits: r.limits,
    }));
  }
}

export function inventoryTx(manager: EntityManager): InventoryTx {
  return {
    hosts: new HostRepository(manager),
    images: new ImageRepository(manager),
    networks: new NetworkRepository(manager),
    ipam: new PgIpamStore(manager),
    instances: new PgInstanceView(manager),
    placement: new PgPlacementView(manager),
    audit: new PgAuditLog(manager),
    lockPlacement: async () => {
      await manager.query(`SELECT pg_advisory_xact_lock(hashtext('norm:placement'))`);
    },
  };
}

/** Each unit of work is one Postgres transaction: the change and its audit event commit together. */
export class PgInventoryUnitOfWork implements InventoryUnitOfWork {
  constructor(private readonly dataSource: DataSource) {}

  run<T>(work: (tx: InventoryTx) => Promise<T>): Promise<T> {
    return this.dataSource.transaction((manager) => work(inventoryTx(manager)));
  }
}
