import {
  type DriftInstance,
  type InFlightReservation,
  type InstanceView,
  type InventoryTx,
  type InventoryUnitOfWork,
  type PlacedInstance,
  type PlacementView,
} from '@norm/core';
import { type DataSource, type EntityManager } from 'typeorm';
import { PgAuditLog } from '../audit/audit.repository';
import { ImageRepository } from '../images/image.repository';
import { PgIpamStore } from '../ipam/ipam.repository';
import { NetworkRepository } from '../ipam/network.repository';
import { IN_FLIGHT_REQUEST, LIVE_INSTANCE } from './host-presence';
import { HostRepository } from './host.repository';

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
