import { randomUUID } from 'node:crypto';
import {
  type ActingContext,
  type AuthSubject,
  type Clock,
  type Credential,
  type CredentialStore,
  fastTokenKey,
  hashSecret,
  IdentityService,
  systemClock,
  TokenAuthenticator,
  verifySecret,
} from '@norm/core';
import { PgAuditReader, PgCredentialStore, PgIdentityUnitOfWork } from '@norm/inventory';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisRequestGate } from '../../../apps/api/src/identity/redis-request-gate';
import { REDIS_URL } from '../../harness/env';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';

/** A clock tests can move; everything else uses the real one. */
class MovableClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return systemClock.sleep(ms, signal);
  }
}

/** Counts row lookups, to prove a cached token is not re-read (nor re-hashed). */
class CountingCredentials implements CredentialStore {
  lookups = 0;
  constructor(private readonly inner: CredentialStore) {}
  findByPrefix(prefix: string): Promise<Credential | undefined> {
    this.lookups += 1;
    return this.inner.findByPrefix(prefix);
  }
}

describe('identity: tokens, cache, revocation, bootstrap (Postgres + Redis)', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  const redises = [new Redis(REDIS_URL), new Redis(REDIS_URL)];
  const limits = { windowMs: 60_000, perIp: 1_000, perToken: 1_000, authFailuresPerIp: 1_000 };
  // Two gates on two connections stand for two API replicas sharing Redis.
  const gates = redises.map((r) => new RedisRequestGate(r, prefix, limits));
  const clock = new MovableClock();
  let service: IdentityService;
  let admin: ActingContext;

  function replica(gate: RedisRequestGate): {
    credentials: CountingCredentials;
    check: (token: string) => Promise<AuthSubject>;
  } {
    const credentials = new CountingCredentials(new PgCredentialStore(db.dataSource));
    const auth = new TokenAuthenticator(credentials, clock, { cacheTtlMs: 30_000 });
    return {
      credentials,
      check: async (token) => {
        const key = fastTokenKey(token);
        const { epoch } = await gate.admit('10.0.0.1', key);
        return auth.authenticate(token, key, epoch);
      },
    };
  }

  beforeAll(async () => {
    service = new IdentityService(new PgIdentityUnitOfWork(db.dataSource), gates[0]!, clock, {
      defaultTokenTtlMs: 3_600_000,
      maxTokenTtlMs: 86_400_000,
    });
    let written = '';
    const created = await service.bootstrapAdmin(async (token) => {
      written = token;
      await Promise.resolve();
    });
    expect(created).toBeDefined();
    admin = { subject: await replica(gates[0]!).check(written), requestId: 'req-test' };
  });
  afterAll(async () => {
    await Promise.all(redises.map((r) => r.quit()));
  });

  it('bootstraps an admin token once, even when two replicas start together', async () => {
    const results = await Promise.all([
      service.bootstrapAdmin(() => Promise.resolve()),
      service.bootstrapAdmin(() => Promise.resolve()),
    ]);
    expect(results).toEqual([undefined, undefined]);
    const [{ count }] = await db.dataSource.query<[{ count: string }]>(
      `SELECT count(*) FROM principals WHERE 'admin' = ANY(roles)`,
    );
    expect(count).toBe('1');
  });

  it('stores only a scrypt hash and the lookup prefix, never the secret', async () => {
    const alice = await service.createPrincipal(admin, {
      kind: 'person',
      name: 'alice',
      roles: ['requester'],
      groups: ['team-b', 'team-a', 'team-a'],
    });
    expect(alice.groups).toEqual(['team-a', 'team-b']);
    const { token, view } = await service.createToken(admin, alice.id, { name: 'laptop' });
    // The secret is base64url, which may itself contain `_`: take everything after the prefix.
    const secret = token.slice(`norm_${view.prefix}_`.length);
    expect(secret.length).toBeGreaterThanOrEqual(40);
    const dump = JSON.stringify(await db.dataSource.query(`SELECT * FROM api_tokens`));
    const audit = JSON.stringify(await db.dataSource.query(`SELECT * FROM audit_events`));
    expect(dump).toContain(view.prefix);
    expect(dump).toMatch(/scrypt\$16384\$8\$1\$/);
    expect(dump).not.toContain(secret);
    expect(audit).not.toContain(secret);
    expect(audit).not.toContain('scrypt$');
    const subject = await replica(gates[0]!).check(token);
    expect(subject).toMatchObject({ kind: 'principal', principal: { name: 'alice' }, tokenId: view.id });
    expect(subject.grants['vm-requests:create']).toBe('own');
    expect(subject.grants['principals:write']).toBeUndefined();
  });

  it('caches a verified token: the row is read once, not per request', async () => {
    const p = await service.createPrincipal(admin, {
      kind: 'service',
      name: 'ci',
      roles: ['viewer'],
      groups: [],
    });
    const { token } = await service.createToken(admin, p.id, { name: 'ci' });
    const r = replica(gates[0]!);
    for (let i = 0; i < 20; i += 1) await r.check(token);
    expect(r.credentials.lookups).toBe(1);
  });

  it('re-reads a token whose cache time is up without hashing its secret again, unless its stored hash changed', async () => {
    const p = await service.createPrincipal(admin, {
      kind: 'service',
      name: 'stale-cache',
      roles: ['viewer'],
      groups: [],
    });
    const { token, view } = await service.createToken(admin, p.id, { name: 'stale' });
    const credentials = new CountingCredentials(new PgCredentialStore(db.dataSource));
    let hashed = 0;
    const auth = new TokenAuthenticator(credentials, clock, { cacheTtlMs: 30_000 }, (secret, hash) => {
      hashed += 1;
      return verifySecret(secret, hash);
    });
    const check = async (): Promise<AuthSubject> => {
      const key = fastTokenKey(token);
      const { epoch } = await gates[0]!.admit('10.0.0.1', key);
      return auth.authenticate(token, key, epoch);
    };
    await check();
    expect({ lookups: credentials.lookups, hashed }).toEqual({ lookups: 1, hashed: 1 });
    clock.offsetMs = 31_000;
    try {
      // Stale: the row is read again (revocation, expiry, roles), the secret is not hashed again.
      await expect(check()).resolves.toMatchObject({ principal: { name: 'stale-cache' } });
      expect({ lookups: credentials.lookups, hashed }).toEqual({ lookups: 2, hashed: 1 });
      // The stored hash changes (as a rotated secret's would): the secret is checked again, and fails.
      await db.dataSource.query(`UPDATE "api_tokens" SET "secret_hash" = $1 WHERE "id" = $2`, [
        await hashSecret('another secret'),
        view.id,
      ]);
      clock.offsetMs = 62_000;
      await expect(check()).rejects.toMatchObject({
        code: 'Unauthenticated',
        details: { reason: 'wrong secret' },
      });
      expect({ lookups: credentials.lookups, hashed }).toEqual({ lookups: 3, hashed: 2 });
    } finally {
      clock.offsetMs = 0;
    }
  });

  it('re-reads a token in use in the background before its time is up, so no request waits for it', async () => {
    const p = await service.createPrincipal(admin, {
      kind: 'service',
      name: 'refresh-ahead',
      roles: ['viewer'],
      groups: [],
    });
    const { token, view } = await service.createToken(admin, p.id, { name: 'busy' });
    const r = replica(gates[0]!);
    await r.check(token);
    expect(r.credentials.lookups).toBe(1);
    try {
      // First half of the entry's time: the cache alone answers.
      clock.offsetMs = 14_000;
      await r.check(token);
      expect(r.credentials.lookups).toBe(1);
      // Second half: answered from the cache at once, and the row is read again behind it,
      // which also picks up a role change.
      await db.dataSource.query(`UPDATE "principals" SET "roles" = '{requester}' WHERE "id" = $1`, [p.id]);
      clock.offsetMs = 16_000;
      await expect(r.check(token)).resolves.toMatchObject({ principal: { roles: ['viewer'] } });
      await vi.waitFor(async () =>
        expect(await r.check(token)).toMatchObject({ principal: { roles: ['requester'] } }),
      );
      expect(r.credentials.lookups).toBe(2);
      // Past the first entry's time, the refreshed one (read at 16 s) answers without another read.
      clock.offsetMs = 30_500;
      await r.check(token);
      expect(r.credentials.lookups).toBe(2);
      // A re-read that finds the token gone drops the entry: the next request gets the refusal.
      await db.dataSource.query(
        `UPDATE "api_tokens" SET "expires_at" = now() - interval '1 day' WHERE "id" = $1`,
        [view.id],
      );
      clock.offsetMs = 40_000;
      await r.check(token);
      expect(r.credentials.lookups).toBe(3);
      await vi.waitFor(() =>
        expect(r.check(token)).rejects.toMatchObject({
          code: 'Unauthenticated',
          details: { reason: 'token expired' },
        }),
      );
    } finally {
      clock.offsetMs = 0;
    }
  });

  it('refuses a token once it expires, even while cached', async () => {
    const p = await service.createPrincipal(admin, {
      kind: 'person',
      name: 'bob',
      roles: ['viewer'],
      groups: [],
    });
    const { token } = await service.createToken(admin, p.id, { name: 'short', expiresInMs: 5_000 });
    const r = replica(gates[0]!);
    await expect(r.check(token)).resolves.toMatchObject({ principal: { name: 'bob' } });
    clock.offsetMs = 6_000;
    try {
      await expect(r.check(token)).rejects.toMatchObject({ code: 'Unauthenticated' });
      await expect(replica(gates[0]!).check(token)).rejects.toMatchObject({
        code: 'Unauthenticated',
        details: { reason: 'token expired' },
      });
    } finally {
      clock.offsetMs = 0;
    }
  });

  it('refuses a revoked token at once on every replica, although both had it cached', async () => {
    const p = await service.createPrincipal(admin, {
      kind: 'person',
      name: 'carol',
      roles: ['operator'],
      groups: [],
    });
    const { token, view } = await service.createToken(admin, p.id, { name: 'cached' });
    const a = replica(gates[0]!);
    const b = replica(gates[1]!);
    await a.check(token);
    await b.check(token);
    await a.check(token);
    await b.check(token);
    expect([a.credentials.lookups, b.credentials.lookups]).toEqual([1, 1]);

    await service.revokeToken(admin, p.id, view.id);

    await expect(a.check(token)).rejects.toMatchObject({ details: { reason: 'token revoked' } });
    await expect(b.check(token)).rejects.toMatchObject({ details: { reason: 'token revoked' } });
    const events = await new PgAuditReader(db.dataSource).list({ action: 'token.revoke', limit: 5 });
    expect(events.items[0]).toMatchObject({
      actor: admin.subject.kind === 'principal' ? admin.subject.principal.id : '',
      objectId: view.id,
      requestId: 'req-test',
    });
  });

  it('deleting a principal revokes its tokens at once and frees its name', async () => {
    const p = await service.createPrincipal(admin, {
      kind: 'person',
      name: 'dave',
      roles: ['viewer'],
      groups: ['x'],
    });
    const { token } = await service.createToken(admin, p.id, { name: 't' });
    const a = replica(gates[1]!);
    await a.check(token);
    await service.deletePrincipal(admin, p.id);
    await expect(a.check(token)).rejects.toMatchObject({ code: 'Unauthenticated' });
    await expect(service.getPrincipal(admin, p.id)).rejects.toMatchObject({ code: 'NotFound' });
    const again = await service.createPrincipal(admin, {
      kind: 'person',
      name: 'dave',
      roles: [],
      groups: [],
    });
    expect(again.id).not.toBe(p.id);
    await expect(
      service.createPrincipal(admin, { kind: 'person', name: 'dave', roles: [], groups: [] }),
    ).rejects.toMatchObject({ code: 'Conflict' });
  });

  it('refuses a wrong secret behind a valid prefix, and garbage', async () => {
    const p = await service.createPrincipal(admin, {
      kind: 'person',
      name: 'erin',
      roles: ['viewer'],
      groups: [],
    });
    const { token } = await service.createToken(admin, p.id, { name: 't' });
    const forged = `${token.slice(0, 18)}${'A'.repeat(43)}`;
    await expect(replica(gates[0]!).check(forged)).rejects.toMatchObject({
      details: { reason: 'wrong secret' },
    });
    await expect(replica(gates[0]!).check('hello')).rejects.toMatchObject({ code: 'Unauthenticated' });
  });

  it('an instance token is good only for its own instance heartbeat', async () => {
    const instanceId = randomUUID();
    await db.dataSource.query(
      `INSERT INTO vm_requests (id, name, owner_id, vcpus, memory_mb, disk_gb, lifecycle_class) VALUES ($1, 'r', $2, 1, 512, 5, 'cattle')`,
      [randomUUID(), randomUUID()],
    );
    const [req] = await db.dataSource.query<Array<{ id: string; owner_id: string }>>(
      `SELECT id, owner_id FROM vm_requests LIMIT 1`,
    );
    await db.dataSource.query(
      `INSERT INTO instances (id, vm_request_id, name, owner_id, domain_name, lifecycle_class) VALUES ($1, $2, 'i', $3, 'norm-i', 'cattle')`,
      [instanceId, req!.id, req!.owner_id],
    );
    const { token } = await service.createInstanceToken(admin, instanceId);
    const subject = await replica(gates[0]!).check(token);
    expect(subject).toMatchObject({ kind: 'instance', instanceId });
    expect(Object.keys(subject.grants)).toEqual(['instances:heartbeat']);
  });

  it('keeps the audit chain intact through all of the above', async () => {
    const result = await new PgAuditReader(db.dataSource).verify();
    expect(result.ok).toBe(true);
    expect(result.checked).toBeGreaterThan(10);
  });

  it('reads a burst of credentials in shared statements, each answer its own and as fresh as a direct read', async () => {
    const issued: Array<{ token: string; tokenId: string; principalId: string }> = [];
    for (let i = 0; i < 30; i += 1) {
      const p = await service.createPrincipal(admin, {
        kind: 'person',
        name: `burst-${i}`,
        roles: ['requester'],
        groups: i % 2 ? ['odd'] : [],
      });
      const { token, view } = await service.createToken(admin, p.id, { name: 'burst' });
      issued.push({ token, tokenId: view.id, principalId: p.id });
    }
    const store = new PgCredentialStore(db.dataSource);
    // Every statement outside a transaction goes through here (the manager's too).
    const statements = vi.spyOn(db.dataSource, 'query');
    const sent = (): number => statements.mock.calls.length;
    try {
      const prefixOf = (token: string): string => token.split('_')[1]!;
      const [unknown, ...found] = await Promise.all([
        store.findByPrefix('nosuchprefix'),
        ...issued.map((t) => store.findByPrefix(prefixOf(t.token))),
      ]);
      expect(unknown).toBeUndefined();
      found.forEach((c, i) => {
        expect(c).toMatchObject({
          tokenId: issued[i]!.tokenId,
          kind: 'api',
          revokedAt: null,
          principal: { id: issued[i]!.principalId, groups: i % 2 ? ['odd'] : [] },
        });
      });
      // Two reads go out at once, alone (two may be in flight); the 29 asked meanwhile share the next.
      expect(sent()).toBe(3);

      // A revocation that committed before a read was asked is seen by it, however reads are shared.
      await service.revokeToken(admin, issued[3]!.principalId, issued[3]!.tokenId);
      const again = await Promise.all(issued.slice(0, 6).map((t) => store.findByPrefix(prefixOf(t.token))));
      expect(again.map((c) => c?.revokedAt !== null)).toEqual([false, false, false, true, false, false]);
    } finally {
      statements.mockRestore();
    }
  });
});

describe('rate limits shared through Redis', () => {
  const prefix = useRedisPrefix();
  const redises = [new Redis(REDIS_URL), new Redis(REDIS_URL)];
  afterAll(async () => {
    await Promise.all(redises.map((r) => r.quit()));
  });

  it('counts requests from both replicas against one per-token budget', async () => {
    const limits = { windowMs: 60_000, perIp: 100, perToken: 10, authFailuresPerIp: 3 };
    const [a, b] = redises.map((r) => new RedisRequestGate(r, prefix, limits)) as [
      RedisRequestGate,
      RedisRequestGate,
    ];
    const outcomes: Array<string | undefined> = [];
    for (let i = 0; i < 12; i += 1) {
      const gate = i % 2 ? b : a;
      outcomes.push((await gate.admit(`10.1.0.${i}`, 'tokkey')).refused?.bucket);
    }
    expect(outcomes.slice(0, 10)).toEqual(Array(10).fill(undefined));
    expect(outcomes.slice(10)).toEqual(['token', 'token']);
    const refused = await a.admit('10.9.9.9', 'tokkey');
    expect(refused.refused!.retryAfterS).toBeGreaterThan(50);
  });

  it('blocks an IP after a few failed authentications, before counting anything else', async () => {
    const limits = { windowMs: 60_000, perIp: 100, perToken: 100, authFailuresPerIp: 3 };
    const [a, b] = redises.map((r) => new RedisRequestGate(r, `${prefix}-f`, limits)) as [
      RedisRequestGate,
      RedisRequestGate,
    ];
    await a.recordAuthFailure('10.2.0.1');
    await b.recordAuthFailure('10.2.0.1');
    expect((await a.admit('10.2.0.1', undefined)).refused).toBeUndefined();
    await b.recordAuthFailure('10.2.0.1');
    expect((await a.admit('10.2.0.1', 'any')).refused?.bucket).toBe('auth-failures');
    expect((await b.admit('10.2.0.2', 'any')).refused).toBeUndefined();
  });
  it('admits concurrent requests in shared script runs, each counted exactly', async () => {
    const limits = { windowMs: 60_000, perIp: 1_000, perToken: 10, authFailuresPerIp: 3 };
    const redis = redises[0]!;
    const gate = new RedisRequestGate(redis, `${prefix}-batch`, limits);
    const commands = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const script = commands.normAdmit!;
    let runs = 0;
    commands.normAdmit = (...args: unknown[]) => {
      runs += 1;
      return script.apply(redis, args);
    };
    try {
      const decisions = await Promise.all(
        Array.from({ length: 25 }, (_, i) => gate.admit(`10.3.0.${i}`, 'tok-batch')),
      );
      // The first goes alone at once; the 24 that arrived while it ran share the next run.
      expect(runs).toBe(2);
      expect(decisions.slice(0, 10).map((d) => d.refused)).toEqual(Array(10).fill(undefined));
      expect(decisions.slice(10).map((d) => d.refused?.bucket)).toEqual(Array(15).fill('token'));
      expect(new Set(decisions.map((d) => d.epoch)).size).toBe(1);
    } finally {
      commands.normAdmit = script;
    }
  });

  it('a request that arrives after a revocation completed reads the new epoch, even mid-batch', async () => {
    const limits = { windowMs: 60_000, perIp: 1_000, perToken: 1_000, authFailuresPerIp: 3 };
    const gate = new RedisRequestGate(redises[0]!, `${prefix}-epoch`, limits);
    const inFlight = gate.admit('10.4.0.1', 'tok-epoch');
    await gate.revoked();
    const after = await gate.admit('10.4.0.2', 'tok-epoch');
    expect(Number(after.epoch)).toBe(Number((await inFlight).epoch) + 1);
  });
});
