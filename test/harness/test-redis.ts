import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { REDIS_URL, randomSuffix } from './env';

/** A key prefix of this test file's own on the shared Redis; its keys are deleted afterwards. */
export function useRedisPrefix(): string {
  const prefix = `norm-test-${randomSuffix()}`;
  afterAll(async () => {
    const redis = new Redis(REDIS_URL);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
    await redis.quit();
  });
  return prefix;
}
