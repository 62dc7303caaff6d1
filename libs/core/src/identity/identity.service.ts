import { authorize, authorizeObject, ownerFilter } from './authorization';
import { Conflict, NotFound, ValidationFailed } from '../errors';
import { type Clock } from '../ports';
import {
  type IdentityTx,
  type IdentityUnitOfWork,
  type NewPrincipal,
  type RevocationNotifier,
} from './identity.port';
import { actorOf, type AuthSubject, type Principal, type TokenView } from './principal';
import { generateToken, hashSecret } from './token-secret';

/** Who is acting and under which request id, for the audit. */
export interface ActingContext {
  subject: AuthSubject;
  requestId?: string | null;
}

export interface CreateTokenInput {
  name: string;
  /** Lifetime in ms; the service caps it at `maxTokenTtlMs`. */
  expiresInMs?: number;
}

export interface IssuedToken {
  /** Shown exactly once, in the creation response. */
  token: string;
  view: TokenView;
}

export interface IdentityServiceOptions {
  defaultTokenTtlMs: number;
  maxTokenTtlMs: number;
}

/**
 * Principals and tokens. Every change commits with its audit event in one transaction,
 * and every revocation bumps the cluster-wide revocation epoch after it commits, so no
 * replica's token cache serves the revoked token again.
 */
export class IdentityService {
  constructor(
    private readonly uow: IdentityUnitOfWork,
    private readonly revocations: RevocationNotifier,
    private readonly clock: Clock,
    private readonly options: IdentityServiceOptions,
  ) {}

  async createPrincipal(ctx: ActingContext, input: NewPrincipal): Promise<Principal> {
    authorize(ctx.subject, 'principals:write');
    return this.uow.run(async (tx) => {
      const principal = await tx.principals.create({
        ...input,
        groups: [...new Set(input.groups)].sort(),
        roles: [...new Set(input.roles)].sort(),
      });
      await this.audit(
        tx,
        ctx,
        'principal.create',
        'principal',
        principal.id,
        null,
        principalAudit(principal),
      );
      return principal;
    });
  }

  /** With an `own` grant the list holds only the caller. */
  async listPrincipals(ctx: ActingContext): Promise<Principal[]> {
    const only = ownerFilter(ctx.subject, 'principals:read');
    const all = await this.uow.run((tx) => tx.principals.list());
    return only === undefined ? all : all.filter((p) => p.id === only);
  }

  async getPrincipal(ctx: ActingContext, id: string): Promise<Principal> {
    // A principal owns itself: someone else's id answers 404 exactly like an unknown one.
    authorizeObject(ctx.subject, 'principals:read', { ownerId: id }, 'principal', id);
    const principal = await this.uow.run((tx) => tx.principals.get(id));
    if (!principal) throw new NotFound('principal', id);
    return principal;
  }

  async deletePrincipal(ctx: ActingContext, id: string): Promise<void> {
    authorizeObject(ctx.subject, 'principals:write', { ownerId: id }, 'principal', id);
    if (ctx.subject.kind === 'principal' && ctx.subject.principal.id === id) {
      // Deleting oneself would revoke the token making the call and could lock out the last admin.
      throw new Conflict('a principal cannot delete itself', { id });
    }
    await this.uow.run(async (tx) => {
      const principal = await tx.principals.get(id);
      if (!principal) throw new NotFound('principal', id);
      const now = this.clock.now();
      await tx.principals.markDeleted(id, now);
      const revoked = await tx.tokens.revokeAllForPrincipal(id, now);
      await this.audit(tx, ctx, 'principal.delete', 'principal', id, principalAudit(principal), null, {
        tokensRevoked: revoked,
      });
    });
    await this.revocations.revoked();
  }

  async createToken(ctx: ActingContext, principalId: string, input: CreateTokenInput): Promise<IssuedToken> {
    authorizeObject(ctx.subject, 'tokens:write', { ownerId: principalId }, 'principal', principalId);
    const ttl = input.expiresInMs ?? this.options.defaultTokenTtlMs;
    if (ttl > this.options.maxTokenTtlMs) {
      throw new ValidationFailed('token lifetime too long', [
        { path: 'expiresIn', message: `at most ${this.options.maxTokenTtlMs} ms` },
      ]);
    }
    const { token, prefix, secret } = generateToken();
    const secretHash = await hashSecret(secret);
    const view = await this.uow.run(async (tx) => {
      const principal = await tx.principals.get(principalId);
      if (!principal) throw new NotFound('principal', principalId);
      const created = await tx.tokens.create({
        kind: 'api',
        principalId,
        instanceId: null,
        name: input.name,
        prefix,
        secretHash,
        expiresAt: new Date(this.clock.now().getTime() + ttl),
        createdBy: actorOf(ctx.subject),
      });
      await this.audit(tx, ctx, 'token.create', 'api-token', created.id, null, tokenAudit(created));
      return created;
    });
    return { token, view };
  }

  /**
   * The narrow credential an instance uses for its own heartbeat and nothing else.
   * Called by the provisioning flow (a later issue) inside its own audit context.
   */
  async createInstanceToken(ctx: ActingContext, instanceId: string): Promise<IssuedToken> {
    authorize(ctx.subject, 'instances:act');
    const { token, prefix, secret } = generateToken();
    const secretHash = await hashSecret(secret);
    const view = await this.uow.run(async (tx) => {
      const created = await tx.tokens.create({
        kind: 'instance',
        principalId: null,
        instanceId,
        name: `instance ${instanceId}`,
        prefix,
        secretHash,
        // Lives as long as the instance; decommission revokes it.
        expiresAt: null,
        createdBy: actorOf(ctx.subject),
      });
      await this.audit(tx, ctx, 'token.create', 'instance-token', created.id, null, tokenAudit(created));
      return created;
    });
    return { token, view };
  }

  async listTokens(ctx: ActingContext, principalId: string): Promise<TokenView[]> {
    authorizeObject(ctx.subject, 'tokens:read', { ownerId: principalId }, 'principal', principalId);
    return this.uow.run(async (tx) => {
      if (!(await tx.principals.get(principalId))) throw new NotFound('principal', principalId);
      return tx.tokens.listForPrincipal(principalId);
    });
  }

  async revokeToken(ctx: ActingContext, principalId: string, tokenId: string): Promise<void> {
    authorizeObject(ctx.subject, 'tokens:write', { ownerId: principalId }, 'principal', principalId);
    await this.uow.run(async (tx) => {
      const token = await tx.tokens.get(tokenId);
      // A token of another principal is as unknown here as a token that never existed.
      if (!token || token.principalId !== principalId) throw new NotFound('token', tokenId);
      if (token.revokedAt) return;
      const revoked = await tx.tokens.revoke(tokenId, this.clock.now());
      if (revoked) {
        await this.audit(
          tx,
          ctx,
          'token.revoke',
          'api-token',
          tokenId,
          tokenAudit(token),
          tokenAudit(revoked),
        );
      }
    });
    await this.revocations.revoked();
  }

  async self(subject: AuthSubject): Promise<{ principal: Principal | null; token: TokenView }> {
    const token = await this.uow.run((tx) => tx.tokens.get(subject.tokenId));
    if (!token) throw new NotFound('token', subject.tokenId);
    return { principal: subject.kind === 'principal' ? subject.principal : null, token };
  }

  /**
   * First start: creates an admin principal and a token only when no live admin token
   * exists. `deliver` stores the secret (the API writes it to a 0600 file) inside the
   * transaction, so a failed write leaves no token nobody can use.
   * Returns the principal id when it created one.
   */
  async bootstrapAdmin(
    deliver: (token: string) => Promise<void>,
  ): Promise<{ principalId: string } | undefined> {
    const { token, prefix, secret } = generateToken();
    const secretHash = await hashSecret(secret);
    return this.uow.run(async (tx) => {
      await tx.lockBootstrap();
      if (await tx.tokens.hasActiveAdminToken(this.clock.now())) return undefined;
      const name = `bootstrap-admin-${this.clock.now().getTime()}`;
      const principal = await tx.principals.create({ kind: 'service', name, roles: ['admin'], groups: [] });
      const created = await tx.tokens.create({
        kind: 'api',
        principalId: principal.id,
        instanceId: null,
        name: 'bootstrap',
        prefix,
        secretHash,
        // No expiry: an expired bootstrap token would lock every operator out. Rotate it
        // by creating a personal admin token and revoking this one.
        expiresAt: null,
        createdBy: 'system:bootstrap',
      });
      const system = 'system:bootstrap';
      await tx.audit.append({
        actor: system,
        action: 'principal.create',
        objectType: 'principal',
        objectId: principal.id,
        after: principalAudit(principal),
        reason: 'no admin token existed at startup',
      });
      await tx.audit.append({
        actor: system,
        action: 'token.create',
        objectType: 'api-token',
        objectId: created.id,
        after: tokenAudit(created),
        reason: 'no admin token existed at startup',
      });
      await deliver(token);
      return { principalId: principal.id };
    });
  }

  private async audit(
    tx: IdentityTx,
    ctx: ActingContext,
    action: string,
    objectType: string,
    objectId: string,
    before: Record<string, unknown> | null,
    after: Record<string, unknown> | null,
    extra?: Record<string, unknown>,
  ): Promise<void> {
    await tx.audit.append({
      actor: actorOf(ctx.subject),
      action,
      objectType,
      objectId,
      before,
      after: after && extra ? { ...after, ...extra } : (after ?? extra ?? null),
      requestId: ctx.requestId ?? null,
    });
  }
}

function principalAudit(p: Principal): Record<string, unknown> {
  return { id: p.id, kind: p.kind, name: p.name, roles: p.roles, groups: p.groups };
}

/** Never the secret or its hash: the audit is permanent and readable by auditors. */
function tokenAudit(t: TokenView): Record<string, unknown> {
  return {
    id: t.id,
    kind: t.kind,
    principalId: t.principalId,
    instanceId: t.instanceId,
    name: t.name,
    prefix: t.prefix,
    expiresAt: t.expiresAt?.toISOString() ?? null,
    revokedAt: t.revokedAt?.toISOString() ?? null,
  };
}
