import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { APP_GUARD, DiscoveryModule } from '@nestjs/core';
import { IdentityService, type NormConfig, systemClock, TokenAuthenticator } from '@norm/core';
import { PgAuditReader, PgCredentialStore, PgIdentityUnitOfWork } from '@norm/inventory';
import { NORM_CONFIG } from '@norm/platform';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { AuditController } from '../audit/audit.controller';
import { AuthGuard } from './auth.guard';
import { BootstrapAdmin } from './bootstrap-admin';
import { AUDIT_READER, IDENTITY_REDIS, REQUEST_GATE } from './identity.tokens';
import { PrincipalsController } from './principals.controller';
import { RedisRequestGate } from './redis-request-gate';
import { RoutePermissionCheck } from './route-permission.check';
import { TokensController } from './tokens.controller';

/**
 * Principals, tokens, the global deny-by-default guard, rate limits and the audit routes.
 * Uses the platform's config and DataSource; opens its own Redis connection with
 * auto-pipelining OFF: the guard's script run (one per batch of concurrent requests, see
 * RedisRequestGate) is the hot path, and the gate batches by itself; ioredis's auto-pipeline
 * would only add a Pipeline object and a setImmediate before each run is written (auth bench:
 * 0.82 with it, 0.86-0.90 without).
 */
@Module({
  imports: [DiscoveryModule],
  controllers: [PrincipalsController, TokensController, AuditController],
  providers: [
    {
      provide: IDENTITY_REDIS,
      inject: [NORM_CONFIG],
      useFactory: (config: NormConfig) =>
        new Redis(config.redisUrl, { enableAutoPipelining: false, connectionName: 'norm-api-auth' }),
    },
    {
      provide: REQUEST_GATE,
      inject: [IDENTITY_REDIS, NORM_CONFIG],
      useFactory: (redis: Redis, config: NormConfig) =>
        new RedisRequestGate(redis, config.redisPrefix, {
          windowMs: config.rateLimitWindowMs,
          perIp: config.rateLimitPerIp,
          perToken: config.rateLimitPerToken,
          authFailuresPerIp: config.authFailureLimit,
        }),
    },
    {
      provide: TokenAuthenticator,
      inject: [DataSource, NORM_CONFIG],
      useFactory: (ds: DataSource, config: NormConfig) =>
        new TokenAuthenticator(new PgCredentialStore(ds), systemClock, {
          cacheTtlMs: config.tokenCacheTtlMs,
        }),
    },
    {
      provide: IdentityService,
      inject: [DataSource, REQUEST_GATE, NORM_CONFIG],
      useFactory: (ds: DataSource, gate: RedisRequestGate, config: NormConfig) =>
        new IdentityService(new PgIdentityUnitOfWork(ds), gate, systemClock, {
          defaultTokenTtlMs: config.tokenDefaultTtlMs,
          maxTokenTtlMs: config.tokenMaxTtlMs,
        }),
    },
    { provide: AUDIT_READER, inject: [DataSource], useFactory: (ds: DataSource) => new PgAuditReader(ds) },
    AuthGuard,
    // One guard instance, also reachable by class (the auth bench swaps its checks out in-process).
    { provide: APP_GUARD, useExisting: AuthGuard },
    RoutePermissionCheck,
    BootstrapAdmin,
  ],
  exports: [IdentityService, TokenAuthenticator, AUDIT_READER],
})
export class IdentityModule implements OnApplicationShutdown {
  constructor(@Inject(IDENTITY_REDIS) private readonly redis: Redis) {}

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit();
  }
}
