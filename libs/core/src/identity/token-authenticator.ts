import { type Clock } from '../ports';
import { Unauthenticated } from './authorization';
import { type CredentialStore } from './identity.port';
import { INSTANCE_GRANTS, grantsForRoles } from './permissions';
import { type AuthSubject } from './principal';
import { parseToken, verifySecret } from './token-secret';

interface CacheEntry {
  subject: AuthSubject;
  /** The revocation epoch read by the request that verified it; any later revocation invalidates it. */
  epoch: string;
  cachedUntil: number;
  /** From here until `cachedUntil`, a request served from this entry also starts its re-read. */
  refreshFrom: number;
  expiresAt: number | null;
  /** The stored hash this token's secret was checked against: unchanged, it need not be checked again. */
  secretHash: string;
}

export interface TokenAuthenticatorOptions {
  /** How long a verified token is trusted without re-reading its row (revocation bypasses this). */
  cacheTtlMs: number;
  /** Bounds memory under a flood of distinct valid tokens. */
  maxEntries?: number;
}

/**
 * Checks bearer tokens without hashing on every request.
 *
 * A verified token is cached in-process for `cacheTtlMs`, keyed by a fast SHA-256 of the
 * token. Revocation must still act at once on every replica, so each entry is stamped with
 * the cluster-wide revocation epoch (a Redis counter bumped after every revocation commits);
 * the caller reads the current epoch in the same Redis round trip as the rate-limit counters,
 * so the check costs nothing extra. An entry whose epoch differs is discarded and the token
 * re-read from Postgres. The epoch is the one read BEFORE verification began, so a
 * verification that raced a revocation is re-checked by the next request.
 *
 * Why not pub/sub invalidation: delivery to another replica is asynchronous, so a request
 * arriving there right after the revoke answered could still pass; the epoch read is ordered
 * after the revoke by construction.
 *
 * A stale entry (its time up, or the epoch moved) is re-read from Postgres, and every check
 * runs again (revoked, expired, principal, roles) except the scrypt one, when the row's secret
 * hash is the one this very token (same SHA-256 key) was verified against: hashing it again
 * could only give the same answer. Without that, every replica re-hashed every active token
 * once per TTL and after every revocation anywhere, tens of milliseconds of CPU each: 50
 * requesters' tokens stalled the api for seconds every 30 s (bench/api).
 *
 * A token in use is re-read before its time is up: a request in the second half of the
 * entry's time is answered from the cache and starts the re-read in the background (one per
 * token), whose result replaces the entry, or removes it when the token no longer passes, so
 * that the next request gets the answer. No entry is trusted past its time either way, but an
 * active client never waits for the re-read: before, all of a burst's tokens went stale
 * together and their requests waited on Postgres at once (bench/api).
 */
export class TokenAuthenticator {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<CacheEntry>>();
  private readonly maxEntries: number;

  constructor(
    private readonly credentials: CredentialStore,
    private readonly clock: Clock,
    private readonly options: TokenAuthenticatorOptions,
    private readonly verifySecretHash: (secret: string, hash: string) => Promise<boolean> = verifySecret,
  ) {
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  /** `key` is `fastTokenKey(token)`, computed once by the caller for the rate-limit bucket too. */
  async authenticate(token: string, key: string, epoch: string): Promise<AuthSubject> {
    const now = this.clock.now().getTime();
    const hit = this.cache.get(key);
    if (
      hit &&
      hit.epoch === epoch &&
      now < hit.cachedUntil &&
      (hit.expiresAt === null || now < hit.expiresAt)
    ) {
      if (now >= hit.refreshFrom) this.refresh(token, key, hit);
      return hit.subject;
    }
    if (hit) this.cache.delete(key);

    // Concurrent first requests with the same token share one scrypt verification.
    const flightKey = `${key}:${epoch}`;
    let flight = this.inFlight.get(flightKey);
    if (!flight) {
      flight = this.verify(token, epoch, hit?.secretHash).finally(() => this.inFlight.delete(flightKey));
      this.inFlight.set(flightKey, flight);
    }
    const entry = await flight;
    if (this.cache.size >= this.maxEntries) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(key, entry);
    return entry.subject;
  }

  /** Re-reads a token whose entry is in its second half, unless that is under way already. */
  private refresh(token: string, key: string, hit: CacheEntry): void {
    const flightKey = `${key}:${hit.epoch}`;
    if (this.inFlight.has(flightKey)) return;
    const flight = this.verify(token, hit.epoch, hit.secretHash).finally(() =>
      this.inFlight.delete(flightKey),
    );
    this.inFlight.set(flightKey, flight);
    flight.then(
      (entry) => {
        if (this.cache.get(key) === hit) this.cache.set(key, entry);
      },
      () => {
        // Revoked, expired, gone, or Postgres unreachable: the next request checks in full.
        if (this.cache.get(key) === hit) this.cache.delete(key);
      },
    );
  }

  /** Drops every cached entry (this replica only); the epoch is what reaches the others. */
  clear(): void {
    this.cache.clear();
  }

  get size(): number {
    return this.cache.size;
  }

  /** `verifiedHash`: the stored hash this token was verified against before, if it was. */
  private async verify(token: string, epoch: string, verifiedHash?: string): Promise<CacheEntry> {
    const parsed = parseToken(token);
    if (!parsed) throw new Unauthenticated('malformed token');
    const credential = await this.credentials.findByPrefix(parsed.prefix);
    if (!credential) throw new Unauthenticated('unknown token');
    if (
      credential.secretHash !== verifiedHash &&
      !(await this.verifySecretHash(parsed.secret, credential.secretHash))
    )
      throw new Unauthenticated('wrong secret');
    const now = this.clock.now();
    if (credential.revokedAt) throw new Unauthenticated('token revoked');
    if (credential.expiresAt && credential.expiresAt.getTime() <= now.getTime()) {
      throw new Unauthenticated('token expired');
    }
    let subject: AuthSubject;
    if (credential.kind === 'instance') {
      if (!credential.instanceId) throw new Unauthenticated('instance token without instance');
      subject = {
        kind: 'instance',
        instanceId: credential.instanceId,
        tokenId: credential.tokenId,
        grants: INSTANCE_GRANTS,
      };
    } else {
      if (!credential.principal) throw new Unauthenticated('principal deleted');
      subject = {
        kind: 'principal',
        principal: credential.principal,
        tokenId: credential.tokenId,
        grants: grantsForRoles(credential.principal.roles),
      };
    }
    return {
      subject,
      epoch,
      cachedUntil: now.getTime() + this.options.cacheTtlMs,
      refreshFrom: now.getTime() + this.options.cacheTtlMs / 2,
      expiresAt: credential.expiresAt?.getTime() ?? null,
      secretHash: credential.secretHash,
    };
  }
}
