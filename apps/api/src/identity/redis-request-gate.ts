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
 * Admits a batch of requests in one script run. KEYS[1] is the revocation epoch; then three
 * keys per request: its ip counter, its token counter ('' when no token) and its IP's
 * auth-failure counter. ARGV: window ms, ip limit, token limit, failure limit.
 * Returns { epoch, then per request: refused bucket or '', retry-after ms }.
 *
 * Each request is decided in arrival order exactly as if it were alone: an IP over its
 * failure budget is refused before anything else (so a token guesser cannot even make us run
 * scrypt), then the IP and token counters. Counters are fixed windows starting at the first
 * hit (INCR, then PEXPIRE when new): one key per bucket, O(1) per request.
 */
const ADMIT_LUA = `
local epoch = redis.call('GET', KEYS[1]) or '0'
local out = { epoch }
for k = 2, #KEYS, 3 do
  local ipKey, tokKey, failKey = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local bucket, ttl = '', 0
  local failures = tonumber(redis.call('GET', failKey) or '0')
  if failures >= tonumber(ARGV[4]) then
    bucket, ttl = 'auth-failures', redis.call('PTTL', failKey)
  else
    local ip = redis.call('INCR', ipKey)
    if ip == 1 then redis.call('PEXPIRE', ipKey, ARGV[1]) end
    if ip > tonumber(ARGV[2]) then
      bucket, ttl = 'ip', redis.call('PTTL', ipKey)
    elseif tokKey ~= '' then
      local tok = redis.call('INCR', tokKey)
      if tok == 1 then redis.call('PEXPIRE', tokKey, ARGV[1]) end
      if tok > tonumber(ARGV[3]) then bucket, ttl = 'token', redis.call('PTTL', tokKey) end
    end
  end
  out[#out + 1] = bucket
  out[#out + 1] = ttl
end
return out
`;

/** Requests admitted by one script run at most; more wait for the next run. */
const MAX_BATCH = 256;

interface Waiting {
  ip: string;
  tokenKey: string | undefined;
  resolve: (decision: GateDecision) => void;
  reject: (error: unknown) => void;
}

const FAIL_LUA = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

interface GateCommands {
  /** `numberOfKeys`, the keys (epoch, then ip/token/fail per request), then the four limits. */
  normAdmit(numberOfKeys: number, ...keysThenLimits: Array<string | number>): Promise<Array<string | number>>;
  normAuthFail(key: string, windowMs: number): Promise<number>;
}

/**
 * Rate limits and the revocation epoch on the Redis every API replica shares (keys under
 * `<redisPrefix>:auth:`). Redis being down fails requests closed (the error propagates as a
 * 5xx): serving without rate limits or revocation would be worse than not serving.
 *
 * Concurrent requests share script runs: while one run is in flight, the requests that
 * arrive queue, and the next run admits all of them (an idle gate sends a lone request at
 * once, so nothing waits more than one run). Under load this makes one Redis call per batch
 * instead of one per request, which was the guard's main cost (bench/auth, bench/heartbeat).
 * Nothing is relaxed: every request is still counted before it is admitted, and every
 * request's epoch is read by a run that started after the request arrived, so a revocation
 * that completed before a request arrived is always seen by it.
 */
export class RedisRequestGate implements RequestGate, RevocationNotifier {
  private readonly redis: Redis & GateCommands;
  private readonly epochKey: string;
  private waiting: Waiting[] = [];
  private running = false;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly limits: RateLimits,
  ) {
    redis.defineCommand('normAdmit', { lua: ADMIT_LUA });
    redis.defineCommand('normAuthFail', { numberOfKeys: 1, lua: FAIL_LUA });
    this.redis = redis as Redis & GateCommands;
    this.epochKey = revocationEpochKey(prefix);
  }

  admit(ip: string, tokenKey: string | undefined): Promise<GateDecision> {
    return new Promise<GateDecision>((resolve, reject) => {
      this.waiting.push({ ip, tokenKey, resolve, reject });
      if (!this.running) this.run();
    });
  }

  /** One script run for the requests waiting now; the next run starts when this one ends. */
  private run(): void {
    const batch = this.waiting.length <= MAX_BATCH ? this.waiting : this.waiting.slice(0, MAX_BATCH);
    this.waiting = batch === this.waiting ? [] : this.waiting.slice(MAX_BATCH);
    this.running = true;
    const keys: string[] = [this.epochKey];
    for (const w of batch) {
      keys.push(
        `${this.prefix}:auth:rl:ip:${w.ip}`,
        w.tokenKey ? `${this.prefix}:auth:rl:token:${w.tokenKey}` : '',
        `${this.prefix}:auth:rl:fail:${w.ip}`,
      );
    }
    const { windowMs, perIp, perToken, authFailuresPerIp } = this.limits;
    this.redis.normAdmit(keys.length, ...keys, windowMs, perIp, perToken, authFailuresPerIp).then(
      (reply) => {
        if (reply.length !== 1 + 2 * batch.length) {
          // Fail closed: a reply that does not answer every request admits none.
          const error = new Error(`rate-limit script answered ${reply.length} values for ${batch.length}`);
          for (const w of batch) w.reject(error);
        } else {
          const epoch = String(reply[0]);
          batch.forEach((w, i) => w.resolve(this.decision(epoch, reply[1 + 2 * i], reply[2 + 2 * i])));
        }
        this.next();
      },
      (error: unknown) => {
        for (const w of batch) w.reject(error);
        this.next();
      },
    );
  }

  private next(): void {
    this.running = false;
    if (this.waiting.length > 0) this.run();
  }

  private decision(epoch: string, bucket: unknown, ttl: unknown): GateDecision {
    if (bucket === '') return { epoch };
    const ttlMs = Number(ttl);
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
