import {
  Conflict,
  type Credential,
  type CredentialStore,
  type IdentityTx,
  type IdentityUnitOfWork,
  type NewPrincipal,
  type NewToken,
  type Principal,
  type PrincipalStore,
  type Role,
  type TokenStore,
  type TokenView,
} from '@norm/core';
import { type DataSource, type EntityManager } from 'typeorm';
import { PgAuditLog } from '../audit/audit.repository';
import { prepared, queryPrepared } from '../prepared';
import { ReadCoalescer } from '../read-coalescer';

interface PrincipalRow {
  id: string;
  kind: 'person' | 'service';
  name: string;
  roles: string[];
  groups: string[];
  created_at: Date;
}

interface TokenRow {
  id: string;
  kind: 'api' | 'instance';
  principal_id: string | null;
  instance_id: string | null;
  name: string;
  prefix: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  created_by: string | null;
  created_at: Date;
}

const PRINCIPAL_SELECT = `
  SELECT p."id", p."kind", p."name", p."roles", p."created_at",
    COALESCE(ARRAY(SELECT g."group_name" FROM "principal_groups" g WHERE g."principal_id" = p."id" ORDER BY 1), '{}') AS "groups"
  FROM "principals" p`;

const TOKEN_COLUMNS = `"id", "kind", "principal_id", "instance_id", "name", "prefix", "expires_at", "revoked_at", "created_by", "created_at"`;

function isUniqueViolation(error: unknown, constraint: string): boolean {
  const e = error as {
    code?: string;
    constraint?: string;
    driverError?: { code?: string; constraint?: string };
  };
  const d = e.driverError ?? e;
  return d.code === '23505' && d.constraint === constraint;
}

export class PgPrincipalStore implements PrincipalStore {
  constructor(private readonly manager: EntityManager) {}

  async create(input: NewPrincipal): Promise<Principal> {
    let id: string;
    try {
      const rows: Array<{ id: string }> = await this.manager.query(
        `INSERT INTO "principals" ("kind", "name", "roles") VALUES ($1, $2, $3) RETURNING "id"`,
        [input.kind, input.name, input.roles],
      );
      id = rows[0]!.id;
    } catch (error) {
      if (isUniqueViolation(error, 'uq_principals_live_name')) {
        throw new Conflict('a principal with this name exists', { name: input.name });
      }
      throw error;
    }
    if (input.groups.length > 0) {
      await this.manager.query(
        `INSERT INTO "principal_groups" ("principal_id", "group_name") SELECT $1, unnest($2::text[])`,
        [id, input.groups],
      );
    }
    return (await this.get(id))!;
  }

  async get(id: string): Promise<Principal | undefined> {
    const rows: PrincipalRow[] = await this.manager.query(
      `${PRINCIPAL_SELECT} WHERE p."id" = $1 AND p."deleted_at" IS NULL`,
      [id],
    );
    return rows[0] ? toPrincipal(rows[0]) : undefined;
  }

  async list(): Promise<Principal[]> {
    const rows: PrincipalRow[] = await this.manager.query(
      `${PRINCIPAL_SELECT} WHERE p."deleted_at" IS NULL ORDER BY p."name"`,
    );
    return rows.map(toPrincipal);
  }

  async markDeleted(id: string, at: Date): Promise<boolean> {
    const result: [unknown[], number] = await this.manager.query(
      `UPDATE "principals" SET "deleted_at" = $2, "updated_at" = now() WHERE "id" = $1 AND "deleted_at" IS NULL`,
      [id, at],
    );
    return result[1] === 1;
  }
}

export class PgTokenStore implements TokenStore {
  constructor(private readonly manager: EntityManager) {}

  async create(input: NewToken): Promise<TokenView> {
    const rows: TokenRow[] = await this.manager.query(
      `INSERT INTO "api_tokens" ("kind", "principal_id", "instance_id", "name", "prefix", "secret_hash", "expires_at", "created_by")
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${TOKEN_COLUMNS}`,
      [
        input.kind,
        input.principalId,
        input.instanceId,
        input.name,
        input.prefix,
        input.secretHash,
        input.expiresAt,
        input.createdBy,
      ],
    );
    return toTokenView(rows[0]!);
  }

  async get(id: string): Promise<TokenView | undefined> {
    const rows: TokenRow[] = await this.manager.query(
      `SELECT ${TOKEN_COLUMNS} FROM "api_tokens" WHERE "id" = $1`,
      [id],
    );
    return rows[0] ? toTokenView(rows[0]) : undefined;
  }

  async listForPrincipal(principalId: string): Promise<TokenView[]> {
    const rows: TokenRow[] = await this.manager.query(
      `SELECT ${TOKEN_COLUMNS} FROM "api_tokens" WHERE "principal_id" = $1 ORDER BY "created_at", "id"`,
      [principalId],
    );
    return rows.map(toTokenView);
  }

  async revoke(id: string, at: Date): Promise<TokenView | undefined> {
    const rows: [TokenRow[], number] = await this.manager.query(
      `UPDATE "api_tokens" SET "revoked_at" = $2 WHERE "id" = $1 AND "revoked_at" IS NULL RETURNING ${TOKEN_COLUMNS}`,
      [id, at],
    );
    const row = rows[0][0];
    return row ? toTokenView(row) : undefined;
  }

  async revokeAllForPrincipal(principalId: string, at: Date): Promise<number> {
    const result: [unknown[], number] = await this.manager.query(
      `UPDATE "api_tokens" SET "revoked_at" = $2 WHERE "principal_id" = $1 AND "revoked_at" IS NULL`,
      [principalId, at],
    );
    return result[1];
  }

  async revokeAllForInstance(instanceId: string, at: Date): Promise<number> {
    const result: [unknown[], number] = await this.manager.query(
      `UPDATE "api_tokens" SET "revoked_at" = $2 WHERE "instance_id" = $1 AND "revoked_at" IS NULL`,
      [instanceId, at],
    );
    return result[1];
  }

  async hasActiveAdminToken(now: Date): Promise<boolean> {
    const rows: unknown[] = await this.manager.query(
      `SELECT 1 FROM "api_tokens" t JOIN "principals" p ON p."id" = t."principal_id"
       WHERE t."kind" = 'api' AND t."revoked_at" IS NULL AND (t."expires_at" IS NULL OR t."expires_at" > $1)
         AND p."deleted_at" IS NULL AND 'admin' = ANY(p."roles")
       LIMIT 1`,
      [now],
    );
    return rows.length > 0;
  }
}

/** Principals, tokens and the audit in one Postgres transaction. */
export class PgIdentityUnitOfWork implements IdentityUnitOfWork {
  constructor(private readonly dataSource: DataSource) {}

  run<T>(work: (tx: IdentityTx) => Promise<T>): Promise<T> {
    return this.dataSource.transaction((manager) =>
      work({
        principals: new PgPrincipalStore(manager),
        tokens: new PgTokenStore(manager),
        audit: new PgAuditLog(manager),
        lockBootstrap: async () => {
          await manager.query(`SELECT pg_advisory_xact_lock(hashtext('norm:identity:bootstrap'))`);
        },
      }),
    );
  }
}

interface CredentialRow {
  prefix: string;
  token_id: string;
  kind: 'api' | 'instance';
  secret_hash: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  instance_id: string | null;
  principal_id: string | null;
  principal_kind: 'person' | 'service' | null;
  principal_name: string | null;
  roles: string[] | null;
  groups: string[] | null;
  principal_created_at: Date | null;
}

/** Every credential asked for at once: its token, live principal and groups, by prefix. */
const FIND_CREDENTIALS = prepared(
  `SELECT t."prefix", t."id" AS "token_id", t."kind", t."secret_hash", t."expires_at", t."revoked_at", t."instance_id",
     p."id" AS "principal_id", p."kind" AS "principal_kind", p."name" AS "principal_name", p."roles",
     p."created_at" AS "principal_created_at",
     ARRAY(SELECT g."group_name" FROM "principal_groups" g WHERE g."principal_id" = p."id" ORDER BY 1) AS "groups"
   FROM "api_tokens" t
   LEFT JOIN "principals" p ON p."id" = t."principal_id" AND p."deleted_at" IS NULL
   WHERE t."prefix" = ANY($1::text[])`,
);

/**
 * The authenticator's reads on a cache miss or a re-read: token, live principal and groups at
 * once. Concurrent reads share a statement (see ReadCoalescer): a burst of clients whose cache
 * entries went stale together (after a revocation anywhere, or every token in use reaching
 * its re-read time at once) costs one round trip, not one pooled connection each. On bench/api
 * the 50 requesters' re-reads, one statement each, held the pool while a creation batch waited
 * for a connection: 50–80 ms for its first statement instead of 5–14.
 */
export class PgCredentialStore implements CredentialStore {
  private readonly reads: ReadCoalescer<Credential>;

  constructor(dataSource: DataSource) {
    this.reads = new ReadCoalescer(async (prefixes) => {
      const rows = await queryPrepared<CredentialRow[]>(dataSource.manager, FIND_CREDENTIALS, [prefixes]);
      return new Map(rows.map((row) => [row.prefix, toCredential(row)]));
    });
  }

  findByPrefix(prefix: string): Promise<Credential | undefined> {
    return this.reads.load(prefix);
  }
}

function toCredential(row: CredentialRow): Credential {
  return {
    tokenId: row.token_id,
    kind: row.kind,
    secretHash: row.secret_hash,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    instanceId: row.instance_id,
    principal:
      row.principal_id && row.principal_kind && row.principal_name && row.principal_created_at
        ? {
            id: row.principal_id,
            kind: row.principal_kind,
            name: row.principal_name,
            roles: (row.roles ?? []) as Role[],
            groups: row.groups ?? [],
            createdAt: row.principal_created_at,
          }
        : null,
  };
}

function toPrincipal(row: PrincipalRow): Principal {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    roles: row.roles as Role[],
    groups: row.groups,
    createdAt: row.created_at,
  };
}

function toTokenView(row: TokenRow): TokenView {
  return {
    id: row.id,
    kind: row.kind,
    principalId: row.principal_id,
    instanceId: row.instance_id,
    name: row.name,
    prefix: row.prefix,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    createdAt: row.created_at,
    createdBy: row.created_by,
  };
}
