import { type AuditLog } from '../audit';
import { type Principal, type PrincipalKind, type TokenKind, type TokenView } from './principal';
import { type Role } from './permissions';

export interface NewPrincipal {
  kind: PrincipalKind;
  name: string;
  roles: Role[];
  groups: string[];
}

export interface NewToken {
  kind: TokenKind;
  principalId: string | null;
  instanceId: string | null;
  name: string;
  prefix: string;
  secretHash: string;
  expiresAt: Date | null;
  createdBy: string | null;
}

/** Principals and their groups. Deleted principals are kept (audit rows name them) but never returned. */
export interface PrincipalStore {
  /** Throws Conflict when a live principal already has the name. */
  create(input: NewPrincipal): Promise<Principal>;
  get(id: string): Promise<Principal | undefined>;
  list(): Promise<Principal[]>;
  markDeleted(id: string, at: Date): Promise<boolean>;
}

export interface TokenStore {
  create(input: NewToken): Promise<TokenView>;
  get(id: string): Promise<TokenView | undefined>;
  listForPrincipal(principalId: string): Promise<TokenView[]>;
  /** Returns the revoked token, or undefined when it was already revoked or does not exist. */
  revoke(id: string, at: Date): Promise<TokenView | undefined>;
  revokeAllForPrincipal(principalId: string, at: Date): Promise<number>;
  /** Revokes an instance's live tokens (a re-issued bootstrap token replaces them); returns how many. */
  revokeAllForInstance(instanceId: string, at: Date): Promise<number>;
  /** A live admin principal holding an unrevoked, unexpired token. */
  hasActiveAdminToken(now: Date): Promise<boolean>;
}

/** One transaction: principals, tokens and the audit event that describes the change commit together. */
export interface IdentityTx {
  principals: PrincipalStore;
  tokens: TokenStore;
  audit: AuditLog;
  /** Serializes bootstrap across API replicas starting at the same moment. */
  lockBootstrap(): Promise<void>;
}

export interface IdentityUnitOfWork {
  run<T>(work: (tx: IdentityTx) => Promise<T>): Promise<T>;
}

/** What the authenticator needs to check a presented token: its row and, for API tokens, the live principal. */
export interface Credential {
  tokenId: string;
  kind: TokenKind;
  secretHash: string;
  expiresAt: Date | null;
  revokedAt: Date | null;
  instanceId: string | null;
  /** Null for instance tokens, and for API tokens whose principal was deleted. */
  principal: Principal | null;
}

export interface CredentialStore {
  findByPrefix(prefix: string): Promise<Credential | undefined>;
}

export type RateLimitBucket = 'ip' | 'token' | 'auth-failures';

export interface GateDecision {
  /** The cluster-wide revocation epoch, read in the same round trip as the counters. */
  epoch: string;
  refused?: { bucket: RateLimitBucket; retryAfterS: number };
}

/**
 * The per-request checks that must be shared by every API replica, in ONE round trip:
 * the rate-limit counters (per IP, per token, and the stricter failed-authentication
 * counter per IP) and the revocation epoch that invalidates every replica's token cache.
 * They travel together because a second round trip per request would cost more than the
 * cached token check itself.
 */
export interface RequestGate {
  /** `tokenKey` is a fast hash of the presented token (never the token), absent without one. */
  admit(ip: string, tokenKey: string | undefined): Promise<GateDecision>;
  recordAuthFailure(ip: string): Promise<void>;
}

/** Tells every replica's token cache that some credential stopped being valid. */
export interface RevocationNotifier {
  revoked(): Promise<void>;
}
