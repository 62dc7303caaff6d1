import { type RevocationNotifier } from '@norm/core';
import { type Redis } from 'ioredis';

/**
 * The Redis key whose value every API replica reads with each request's rate-limit check; a
 * new value empties that replica's token cache, so a revocation acts at once everywhere.
 */
export function revocationEpochKey(prefix: string): string {
  return `${prefix}:auth:revocation-epoch`;
}

/**
 * Bumps the revocation epoch from a process that serves no requests (the worker, when a
 * decommission revokes an instance's tokens). The bump is one INCR; it is safe to repeat.
 */
export class RedisRevocationNotifier implements RevocationNotifier {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.key = revocationEpochKey(prefix);
  }

  async revoked(): Promise<void> {
    await this.redis.incr(this.key);
  }
}
