import {
  type DriftInstance,
  type InFlightReservation,
  type InstanceView,
  type InventoryTx,
  type InventoryUnitOfWork,
  type PlacedInstance,
  type PlacementRequestRow,
  type PlacementView,
} from '@norm/core';
import { type DataSource, type EntityManager } from 'typeorm';
import { PgAuditLog } from '../audit/audit.repository';
import { ImageRepository } from '../images/image.repository';
import { PgIpamStore } from '../ipam/ipam.repository';
import { NetworkRepository } from '../ipam/network.repository';
import { rowsOf } from '../pg-errors';
import { HostRepository } from './host.repository';

/** Instance states that still hold a host and a domain name. */
const LIVE_INSTANCE = `('provisioning', 'running', 'stopping', 'stopped', 'decommissioning')`;
/** Request states whose capacity is promised but perhaps not yet visible to `xl info`. */
const IN_FLIGHT_REQUEST = `('approved', 'provisioning')`;

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

  async countOnHost(hostId: string): Promise<number> {
    // Every instance row counts, finished ones too: they keep their host for the record.
    const rows: Array<{ n: string }> = await this.manager.query(
      `SELECT (SELECT count(*) FROM "instances" WHERE "host_id" = $1)
            + (SELECT count(*) FROM "vm_requests" WHERE "host_id" = $1) AS "n"`,
      [hostId],
    );
    return Number(rows[0]?.n ?? 0);
  }
}

class PgPlacementView implements PlacementView {
  constructor(private readonly manager: EntityManager) {}

  async reservations(): Promise<InFlightReservation[]> {
    const rows: Array<{
      host_id: string;
      memory_mb: number;
      vcpus: number;
      disk_gb: number;
      domain_name: string | null;
      anti_affinity_group: string | null;
    }> = await this.manager.query(
      `SELECT r."host_id", r."memory_mb", r."vcpus", r."disk_gb", i."domain_name", r."anti_affinity_group"
       FROM "vm_requests" r LEFT JOIN "instances" i ON i."vm_request_id" = r."id"
       WHERE r."host_id" IS NOT NULL AND r."state" IN ${IN_FLIGHT_REQUEST}`,
    );
    return rows.map((r) => ({
      hostId: r.host_id,
      memoryMb: r.memory_mb,
      vcpus: r.vcpus,
      diskGb: r.disk_gb,
      domainName: r.domain_name,
      antiAffinityGroup: r.anti_affinity_group,
    }));
  }

  async placedInstances(): Promise<PlacedInstance[]> {
    const rows: Array<{ host_id: string; anti_affinity_group: string | null }> = await this.manager.query(
      `SELECT i."host_id", r."anti_affinity_group" FROM "instances" i
       JOIN "vm_requests" r ON r."id" = i."vm_request_id"
       WHERE i."host_id" IS NOT NULL AND i."state" IN ${LIVE_INSTANCE}
         AND r."state" NOT IN ${IN_FLIGHT_REQUEST}`,
    );
    return rows.map((r) => ({ hostId: r.host_id, antiAffinityGroup: r.anti_affinity_group }));
  }
}

interface RequestRow {
  id: string;
  state: string;
  host_id: string | null;
  memory_mb: number;
  vcpus: number;
  disk_gb: number;
  anti_affinity_group: string | null;
}
const REQUEST_COLUMNS = `"id", "state", "host_id", "memory_mb", "vcpus", "disk_gb", "anti_affinity_group"`;

function toRequest(r: RequestRow): PlacementRequestRow {
  return {
    id: r.id,
    state: r.state,
    hostId: r.host_id,
    memoryMb: r.memory_mb,
    vcpus: r.vcpus,
    diskGb: r.disk_gb,
    antiAffinityGroup: r.anti_affinity_group,
  };
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
    placementRequest: async (requestId) => {
      const rows: RequestRow[] = await manager.query(
        `SELECT ${REQUEST_COLUMNS} FROM "vm_requests" WHERE "id" = $1 FOR UPDATE`,
        [requestId],
      );
      return rows[0] ? toRequest(rows[0]) : undefined;
    },
    assignHost: async (requestId, hostId) => {
      const result: unknown = await manager.query(
        `UPDATE "vm_requests" SET "host_id" = $2, "version" = "version" + 1, "updated_at" = now()
         WHERE "id" = $1 RETURNING ${REQUEST_COLUMNS}`,
        [requestId, hostId],
      );
      const row = rowsOf<RequestRow>(result)[0];
      return row ? toRequest(row) : undefined;
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
