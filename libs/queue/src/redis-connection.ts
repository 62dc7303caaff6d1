import { Redis, type RedisOptions } from 'ioredis';

/**
 * BullMQ needs `maxRetriesPerRequest: null` on worker connections, or a Redis blip throws
 * inside its blocking loop instead of waiting for the reconnect.
 */
export function createBullConnection(redisUrl: string, extra: RedisOptions = {}): Redis {
  return new Redis(redisUrl, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectionName: 'norm-bullmq',
    retryStrategy: (attempt) => Math.min(attempt * 200, 5_000),
    ...extra,
  });
}
