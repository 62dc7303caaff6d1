import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Bearer tokens look like `norm_<prefix>_<secret>`:
 *   - `prefix` (12 hex chars) is stored in clear with a unique index, to find the row
 *     without scanning every hash;
 *   - `secret` (32 random bytes, base64url) is stored only as a scrypt hash.
 * The `norm_` marker lets secret scanners (and our log redaction) recognise a leaked token.
 */
const TOKEN_RE = /^norm_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface ParsedToken {
  prefix: string;
  secret: string;
}

export function generateToken(): { token: string; prefix: string; secret: string } {
  const prefix = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { token: `norm_${prefix}_${secret}`, prefix, secret };
}

export function parseToken(token: string): ParsedToken | undefined {
  const m = TOKEN_RE.exec(token);
  return m ? { prefix: m[1]!, secret: m[2]! } : undefined;
}

/**
 * scrypt at N=2^14, r=8, p=1 (16 MiB, tens of ms): slow enough that a stolen table is
 * costly to brute-force, cheap enough because verified tokens are cached in-process and
 * a token is hashed at most once per cache lifetime per replica.
 */
const SCRYPT = { N: 16_384, r: 8, p: 1, keyLen: 32 } as const;

function scryptAsync(
  secret: string,
  salt: Buffer,
  N: number,
  r: number,
  p: number,
  len: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, len, { N, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/**
 * Instance (heartbeat) tokens: scrypt at N=2^10 (1 MiB, about 2 ms here, against about 37 ms
 * at 2^14). Every token's secret is 32 random bytes, so no hash cost makes guessing one any
 * more hopeless than it is; the slow setting exists for the API tokens people hold, and the
 * issue asks for it there. An instance token is hashed once per provisioning (200 at once
 * cost 7 s of CPU at 2^14, bench/provision) and verified once per cache lifetime.
 */
export const INSTANCE_TOKEN_SCRYPT = { N: 1024, r: 8, p: 1, keyLen: 32 } as const;

/** `scrypt$N$r$p$<salt b64>$<hash b64>`: the parameters travel with the hash, so they can be raised later. */
export async function hashSecret(
  secret: string,
  params: { N: number; r: number; p: number; keyLen: number } = SCRYPT,
): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, params.N, params.r, params.p, params.keyLen);
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, saltB64, keyB64] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(keyB64, 'base64');
  const actual = await scryptAsync(
    secret,
    Buffer.from(saltB64, 'base64'),
    Number(n),
    Number(r),
    Number(p),
    expected.length,
  );
  return timingSafeEqual(actual, expected);
}

/**
 * A fast, non-reversible key for the in-process cache and the per-token rate-limit bucket.
 * It never leaves the process except as a Redis key, and a token cannot be recovered from it.
 */
export function fastTokenKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 32);
}
