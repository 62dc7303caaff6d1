import { type DynamicModule, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { APP_GUARD, DiscoveryModule } from '@nestjs/core';
import { IdentityService, systemClock, TokenAuthenticator } from '@norm/core';
import { PgAuditReader, PgCredentialStore, PgIdentityUnitOfWork } from '@norm/inventory';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { AuditController } from '../audit/audit.controller';
import { AuthGuard } from './auth.guard';
import { BootstrapAdmin } from './bootstrap-admin';
import {
  AUDIT_READER,
  IDENTITY_OPTIONS,
  IDENTITY_REDIS,
  type IdentityModuleOptions,
  REQUEST_GATE,
} from './identity.tokens';
import { PrincipalsController } from './principals.controller';
import { RedisRequestGate } from './redis-request-gate';
import { RoutePermissionCheck } from './route-permission.check';
import { TokensController } from './tokens.controller';

/**
 * Principals, tokens, the global deny-by-default guard, rate limits and the audit routes.
 * Needs a TypeORM `DataSource` provider from the app; opens its own Redis connection with
 * auto-pipelining, because the guard's one script call per request is the hot path.
 */
@Module({})
export class IdentityModule implements OnApplicationShutdown {
  constructor(@Inject(IDENTITY_REDIS) private readonly redis: Redis) {}

  static forRoot(options: IdentityModuleOptions): DynamicModule {
    const { config } = options;
    return {
      module: IdentityModule,
      global: true,
      imports: [DiscoveryModule],
      controllers: [PrincipalsController, TokensController, AuditController],
      providers: [
        { provide: IDENTITY_OPTIONS, useValue: options },
        {
          provide: IDENTITY_REDIS,
          useFactory: () =>
            new Redis(config.redisUrl, { enableAutoPipelining: true, connectionName: 'norm-api-auth' }),
        },
        {
          provide: REQUEST_GATE,
          inject: [IDENTITY_REDIS],
          useFactory: (redis: Redis) =>
            new RedisRequestGate(redis, config.redisPrefix, {
              windowMs: config.rateLimitWindowMs,
              perIp: config.rateLimitPerIp,
              perToken: config.rateLimitPerToken,
              authFailuresPerIp: config.authFailureLimit,
            }),
        },
        {
          provide: TokenAuthenticator,
          inject: [DataSource],
          useFactory: (ds: DataSource) =>
            new TokenAuthenticator(new PgCredentialStore(ds), systemClock, {
              cacheTtlMs: config.tokenCacheTtlMs,
            }),
        },
        {
          provide: IdentityService,
          inject: [DataSource, REQUEST_GATE],
          useFactory: (ds: DataSource, gate: RedisRequestGate) =>
            new IdentityService(new PgIdentityUnitOfWork(ds), gate, systemClock, {
              defaultTokenTtlMs: config.tokenDefaultTtlMs,
              maxTokenTtlMs: config.tokenMaxTtlMs,
            }),
        },
        {
          provide: AUDIT_READER,
          inject: [DataSource],
          useFactory: (ds: DataSource) => new PgAuditReader(ds),
        },
        AuthGuard,
        // One guard instance, also reachable by class (the auth bench swaps it out in-process).
        { provide: APP_GUARD, useExisting: AuthGuard },
        RoutePermissionCheck,
        BootstrapAdmin,
      ],
      exports: [IdentityService, TokenAuthenticator, AUDIT_READER, AuthGuard],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit();
  }
}
