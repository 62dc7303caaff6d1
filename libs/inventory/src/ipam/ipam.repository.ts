import { randomBytes } from 'node:crypto';
import {
  Conflict,
  type DomainGoneConfirmation,
  generateXenMac,
  type IpAllocation,
  type IpamStore,
  NotFound,
} from '@norm/core';
import { type EntityManager } from 'typeorm';
import { rowsOf } from '../pg-errors';
import { prepared, queryPrepared } from '../prepared';

interface AllocationRow {
  id: string;
  pool_id: string;
  ip: string;
  mac: string;
  instance_id: string | null;
  allocated_at: Date;
  released_at: Date | null;
}

const COLUMNS = `"id", "pool_id", host("ip") AS "ip", "mac", "instance_id", "allocated_at", "released_at"`;

/**
 * MAC collisions are a birthday problem over 2^23 addresses: rare, but certain in a large
 * fleet eventually. The unique index catches one; a handful of fresh draws always suffices.
 */
const MAC_ATTEMPTS = 8;

/** See migration IpamAllocateInOneCall: the network's lock, the read and the insert in one call. */
const ALLOCATE = prepared(
  `SELECT "outcome", "id", "pool_id", "ip", "mac", "instance_id", "allocated_at", "released_at"
     FROM "norm_ipam_allocate"($1, $2, $3)`,
);

/**
 * IP and MAC allocation on Postgres. "Never twice" rests on two things: allocations of one
 * network are serialised by a row lock on the network, and the partial unique indexes on live
 * IP and live MAC reject anything that slipped past (another code path, a manual insert).
 * The lock lives until the caller's transaction ends (or the statement's, outside one).
 */
export class PgIpamStore implements IpamStore {
  constructor(
    private readonly manager: EntityManager,
    private readonly random: (n: number) => Uint8Array = randomBytes,
  ) {}

  async allocate(networkId: string, instanceId: string): Promise<IpAllocation> {
    // Drawn up front, tried in order: the first one no live allocation holds is taken.
    const macs = Array.from({ length: MAC_ATTEMPTS }, () => generateXenMac(this.random));
    const rows = await queryPrepared<Array<AllocationRow & { outcome: string }>>(this.manager, ALLOCATE, [
      networkId,
      instanceId,
      macs,
    ]);
    const row = rows[0];
    switch (row?.outcome) {
      case 'existing':
      case 'allocated':
        return toAllocation(row);
      case 'no-network':
        throw new NotFound('network', networkId);
      case 'full':
        throw new Conflict('network has no free address', { networkId });
      default:
        throw new Conflict('no free MAC address after several draws', { networkId, attempts: MAC_ATTEMPTS });
    }
  }

  async release(confirmation: DomainGoneConfirmation): Promise<number> {
    const result: unknown = await this.manager.query(
      `UPDATE "ip_allocations" SET "released_at" = $2 WHERE "instance_id" = $1 AND "released_at" IS NULL
       RETURNING "id"`,
      [confirmation.instanceId, confirmation.confirmedAt],
    );
    return rowsOf(result).length;
  }

  async listLive(networkId: string): Promise<IpAllocation[]> {
    const rows: AllocationRow[] = await this.manager.query(
      `SELECT ${COLUMNS} FROM "ip_allocations" WHERE "pool_id" = $1 AND "released_at" IS NULL ORDER BY "ip"`,
      [networkId],
    );
    return rows.map(toAllocation);
  }
}

function toAllocation(r: AllocationRow): IpAllocation {
  return {
    id: r.id,
    networkId: r.pool_id,
    ip: r.ip,
    mac: r.mac,
    instanceId: r.instance_id,
    allocatedAt: r.allocated_at,
    releasedAt: r.released_at,
  };
}
