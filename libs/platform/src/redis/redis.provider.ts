import { type FactoryProvider } from '@nestjs/common';
import { type Logger, type NormConfig } from '@norm/core';
import { Redis, type RedisOptions } from 'ioredis';
import { type PlatformApp } from '../logging/root-logger';
import { NORM_CONFIG, NORM_LOGGER } from '../tokens';

/**
 * A general-purpose client (caches, counters, rate limits, pub/sub publishing). It is NOT for
 * BullMQ: BullMQ's blocking commands need `maxRetriesPerRequest: null` on connections of
 * their own (see @norm/queue's createBullConnection).
 *
 * Commands fail after one reconnect attempt instead of ioredis's default twenty, so a request
 * that needs Redis during an outage gets a prompt error rather than hanging for tens of
 * seconds. Reconnection itself never stops; the backoff is capped at 2 s so service resumes
 * quickly once Redis is back. `extra` overrides any of this (e.g. `enableAutoPipelining`).
 */
export function createRedisClient(
  redisUrl: string,
  connectionName: string,
  log: Logger,
  extra: RedisOptions = {},
): Redis {
  const redis = new Redis(redisUrl, {
    connectionName,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
    ...extra,
  });
  // Without an 'error' listener ioredis prints every failed reconnect to stderr; here only the
  // transitions are logged, so an outage costs two lines, not one per attempt.
  let up = true;
  redis.on('error', (error: Error) => {
    if (!up) return;
    up = false;
    log.warn('redis connection lost', { connectionName, error });
  });
  redis.on('ready', () => {
    if (up) return;
    up = true;
    log.info('redis connection restored', { connectionName });
  });
  return redis;
}

/** The platform's shared client, injectable as `Redis`. */
export function redisProvider({ app }: { app: PlatformApp }): FactoryProvider<Redis> {
  return {
    provide: Redis,
    inject: [NORM_CONFIG, NORM_LOGGER],
    useFactory: (config: NormConfig, log: Logger): Redis =>
      createRedisClient(config.redisUrl, `norm-${app}`, log),
  };
}
