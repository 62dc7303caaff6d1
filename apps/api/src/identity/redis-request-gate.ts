import {
  type GateDecision,
  type RateLimitBucket,
  type RequestGate,
  type RevocationNotifier,
} from '@norm/core';
import { revocationEpochKey } from '@norm/platform';
import { type Redis } from 'ioredis';

export interface RateLimits {
  windowMs: number;
  perIp: number;
  perToken: number;
  authFailuresPerIp: number;
}

/**
 * KEYS: ip counter, token counter ('' when no token), auth-failure counter, revocation epoch.
 * ARGV: window ms, ip limit, token limit, failure limit.
 * Returns { epoch, refused bucket or '', retry-after ms }.
 *
 * An IP over its failure budget is refused before anything else, so a token guesser cannot
 * even make us run scrypt. Counters are fixed windows starting at the first hit (INCR, then
 * PEXPIRE when new): one key per bucket and O(1) per request.
 */
const ADMIT_LUA = `
local epoch = redis.call('GET', KEYS[4]) or '0'
local failures = tonumber(redis.call('GET', KEYS[3]) or '0')
if failures >= tonumber(ARGV[4]) then
  return { epoch, 'auth-failures', redis.call('PTTL', KEYS[3]) }
end
local ip = redis.call('INCR', KEYS[1])
if ip == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if ip > tonumber(ARGV[2]) then return { epoch, 'ip', redis.call('PTTL', KEYS[1]) } end
if KEYS[2] ~= '' then
  local tok = redis.call('INCR', KEYS[2])
  if tok == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
  if tok > tonumber(ARGV[3]) then return { epoch, 'token', redis.call('PTTL', KEYS[2]) } end
end
return { epoch, '', 0 }
`;

const FAIL_LUA = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

interface GateCommands {
  normAdmit(
    ip: string,
    token: string,
    fail: string,
    epoch: string,
    windowMs: number,
    ipLimit: number,
    tokenLimit: number,
    failLimit: number,
  ): Promise<[string, string, number]>;
  normAuthFail(key: string, windowMs: number): Promise<number>;
}

/**
 * Rate limits and the revocation epoch on the Redis every API replica shares (keys under
 * `<redisPrefix>:auth:`), in one script call per request. Redis being down fails requests
 * closed (the error propagates as a 5xx): serving without rate limits or revocation would
 * be worse than not serving.
 */
export class RedisRequestGate implements RequestGate, RevocationNotifier {
  private readonly redis: Redis & GateCommands;
  private readonly epochKey: string;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly limits: RateLimits,
  ) {
    redis.defineCommand('normAdmit', { numberOfKeys: 4, lua: ADMIT_LUA });
    redis.defineCommand('normAuthFail', { numberOfKeys: 1, lua: FAIL_LUA });
    this.redis = redis as Redis & GateCommands;
    this.epochKey = revocationEpochKey(prefix);
  }

  async admit(ip: string, tokenKey: string | undefined): Promise<GateDecision> {
    const [epoch, bucket, ttlMs] = await this.redis.normAdmit(
      `${this.prefix}:auth:rl:ip:${ip}`,
      tokenKey ? `${this.prefix}:auth:rl:token:${tokenKey}` : '',
      `${this.prefix}:auth:rl:fail:${ip}`,
      this.epochKey,
      this.limits.windowMs,
      this.limits.perIp,
      this.limits.perToken,
      this.limits.authFailuresPerIp,
    );
    if (bucket === '') return { epoch };
    // PTTL is -1 for a key that somehow lost its expiry; never tell a client to retry in 0 s.
    const retryAfterS = Math.max(1, Math.ceil((ttlMs > 0 ? ttlMs : this.limits.windowMs) / 1000));
    return { epoch, refused: { bucket: bucket as RateLimitBucket, retryAfterS } };
  }

  async recordAuthFailure(ip: string): Promise<void> {
    await this.redis.normAuthFail(`${this.prefix}:auth:rl:fail:${ip}`, this.limits.windowMs);
  }

  async revoked(): Promise<void> {
    await this.redis.incr(this.epochKey);
  }
}
