import { randomBytes } from 'node:crypto';
import {
  Conflict,
  type DomainGoneConfirmation,
  generateXenMac,
  type IpAllocation,
  type IpamStore,
  lowestFreeIp,
  NotFound,
} from '@norm/core';
import { type EntityManager } from 'typeorm';
import { isUniqueViolation, rowsOf } from '../pg-errors';

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

/**
 * IP and MAC allocation on Postgres. "Never twice" rests on two things: allocations of one
 * network are serialised by a row lock on the network, and the partial unique indexes on live
 * IP and live MAC reject anything that slipped past (another code path, a manual insert).
 * Must run inside a transaction (the row lock lives until it ends).
 */
export class PgIpamStore implements IpamStore {
  constructor(
    private readonly manager: EntityManager,
    private readonly random: (n: number) => Uint8Array = randomBytes,
  ) {}

  async allocate(networkId: string, instanceId: string): Promise<IpAllocation> {
    if (!this.manager.queryRunner?.isTransactionActive)
      throw new Error('PgIpamStore.allocate needs a transaction');
    const pools: Array<{ range_start: string; range_end: string; gateway: string | null }> =
      await this.manager.query(
        `SELECT host("range_start") AS "range_start", host("range_end") AS "range_end", host("gateway") AS "gateway"
       FROM "ip_pools" WHERE "id" = $1 FOR UPDATE`,
        [networkId],
      );
    const pool = pools[0];
    if (!pool) throw new NotFound('network', networkId);

    const existing: AllocationRow[] = await this.manager.query(
      `SELECT ${COLUMNS} FROM "ip_allocations" WHERE "pool_id" = $1 AND "instance_id" = $2 AND "released_at" IS NULL`,
      [networkId, instanceId],
    );
    if (existing[0]) return toAllocation(existing[0]);

    const taken: Array<{ ip: string }> = await this.manager.query(
      `SELECT host("ip") AS "ip" FROM "ip_allocations" WHERE "pool_id" = $1 AND "released_at" IS NULL`,
      [networkId],
    );
    const ip = lowestFreeIp(pool.range_start, pool.range_end, [
      ...taken.map((t) => t.ip),
      ...(pool.gateway ? [pool.gateway] : []),
    ]);
    if (ip === undefined) throw new Conflict('network has no free address', { networkId });

    for (let attempt = 1; ; attempt++) {
      const mac = generateXenMac(this.random);
      await this.manager.query(`SAVEPOINT "ipam_mac"`);
      try {
        const rows: AllocationRow[] = await this.manager.query(
          `INSERT INTO "ip_allocations" ("pool_id", "ip", "mac", "instance_id") VALUES ($1, $2, $3, $4)
           RETURNING ${COLUMNS}`,
          [networkId, ip, mac, instanceId],
        );
        await this.manager.query(`RELEASE SAVEPOINT "ipam_mac"`);
        const row = rows[0];
        if (!row) throw new Error('insert returned no row');
        return toAllocation(row);
      } catch (err) {
        await this.manager.query(`ROLLBACK TO SAVEPOINT "ipam_mac"`);
        if (!isUniqueViolation(err, 'uq_ip_allocations_live_mac') || attempt >= MAC_ATTEMPTS) throw err;
      }
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
