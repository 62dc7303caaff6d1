import {
  Conflict,
  type NetworkRecord,
  type NetworkStore,
  type NetworkUsage,
  type NewNetwork,
  rangeSize,
} from '@norm/core';
import { type EntityManager } from 'typeorm';
import { isForeignKeyViolation, isUniqueViolation, rowsOf } from '../pg-errors';
import { prepared, queryPrepared } from '../prepared';

interface NetworkRow {
  id: string;
  name: string;
  bridge: string;
  cidr: string;
  gateway: string | null;
  range_start: string;
  range_end: string;
  created_at: Date;
}

const COLUMNS = `"id", "name", "bridge", "cidr"::text AS "cidr", host("gateway") AS "gateway",
  host("range_start") AS "range_start", host("range_end") AS "range_end", "created_at"`;

const GET_NETWORK = prepared(`SELECT ${COLUMNS} FROM "ip_pools" WHERE "id" = $1`);

/** Networks are `ip_pools` rows: one row per network, its range included. */
export class NetworkRepository implements NetworkStore {
  constructor(private readonly manager: EntityManager) {}

  async create(n: NewNetwork): Promise<NetworkRecord> {
    try {
      const rows: NetworkRow[] = await this.manager.query(
        `INSERT INTO "ip_pools" ("name", "bridge", "cidr", "gateway", "range_start", "range_end")
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
        [n.name, n.bridge, n.cidr, n.gateway, n.rangeStart, n.rangeEnd],
      );
      const row = rows[0];
      if (!row) throw new Error('insert returned no row');
      return toRecord(row);
    } catch (err) {
      if (isUniqueViolation(err, 'uq_ip_pools_name'))
        throw new Conflict('a network with this name exists', { name: n.name });
      throw err;
    }
  }

  async get(id: string): Promise<NetworkRecord | undefined> {
    const rows = await queryPrepared<NetworkRow[]>(this.manager, GET_NETWORK, [id]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async list(): Promise<NetworkRecord[]> {
    const rows: NetworkRow[] = await this.manager.query(`SELECT ${COLUMNS} FROM "ip_pools" ORDER BY "name"`);
    return rows.map(toRecord);
  }

  async usage(id: string): Promise<NetworkUsage> {
    const rows: Array<{ range_start: string; range_end: string; allocated: string }> =
      await this.manager.query(
        `SELECT host(p."range_start") AS "range_start", host(p."range_end") AS "range_end",
         (SELECT count(*) FROM "ip_allocations" a WHERE a."pool_id" = p."id" AND a."released_at" IS NULL) AS "allocated"
       FROM "ip_pools" p WHERE p."id" = $1`,
        [id],
      );
    const row = rows[0];
    return row
      ? { size: rangeSize(row.range_start, row.range_end), allocated: Number(row.allocated) }
      : { size: 0, allocated: 0 };
  }

  async delete(id: string): Promise<boolean> {
    try {
      const result: unknown = await this.manager.query(
        `DELETE FROM "ip_pools" WHERE "id" = $1 RETURNING "id"`,
        [id],
      );
      return rowsOf(result).length === 1;
    } catch (err) {
      // Released allocations are kept as history; a network that ever allocated stays.
      if (isForeignKeyViolation(err, 'fk_ip_allocations_pool'))
        throw new Conflict('network has allocations', { networkId: id });
      throw err;
    }
  }
}

function toRecord(r: NetworkRow): NetworkRecord {
  return {
    id: r.id,
    name: r.name,
    bridge: r.bridge,
    cidr: r.cidr,
    gateway: r.gateway,
    rangeStart: r.range_start,
    rangeEnd: r.range_end,
    createdAt: r.created_at,
  };
}
