/** What every redacted value is replaced with, in logs and in tests that assert on them. */
export const REDACTED = '[redacted]';

/**
 * Field names whose values are credentials wherever they appear in a logged object. Matched
 * case-insensitively and ignoring `-` and `_`, so `privateKey`, `private_key` and
 * `PRIVATE-KEY` are all caught.
 */
export const SECRET_FIELDS = [
  'token',
  'accessToken',
  'refreshToken',
  'apiKey',
  'password',
  'passphrase',
  'secret',
  'clientSecret',
  'privateKey',
  // Header names, for header bags logged as they are.
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
] as const;

/**
 * How deep a logged object is searched. Deeper than any structure we log on purpose; the cap
 * only bounds the work on an accidentally huge or cyclic object.
 */
export const REDACT_DEPTH = 8;

function normalize(key: string): string {
  return key.toLowerCase().replace(/[-_]/g, '');
}

const SECRET_KEYS = new Set<string>(SECRET_FIELDS.map(normalize));

/**
 * What `isSecretKey` answered for each key seen so far. Logged keys come from a small set
 * written in code, so this stays small; the cap bounds it when keys come from data (e.g. a
 * labels map), past which keys are simply normalized each time.
 */
const verdicts = new Map<string, boolean>();
const MAX_VERDICTS = 2_000;

function isSecretKey(key: string): boolean {
  const known = verdicts.get(key);
  if (known !== undefined) return known;
  const secret = SECRET_KEYS.has(key) || SECRET_KEYS.has(normalize(key));
  if (verdicts.size < MAX_VERDICTS) verdicts.set(key, secret);
  return secret;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * `value` with every secret field replaced by REDACTED, at any depth up to REDACT_DEPTH, in
 * plain objects and arrays. Copy-on-write: the caller's objects are never modified, and an
 * object without secrets is returned as is, so the common case allocates nothing.
 *
 * Class instances (requests, sockets, Errors) are not entered: their own serializers decide
 * what is logged, and errors are passed through this function after serialization.
 *
 * Why not pino's `redact` option: it matches explicit paths, so "any depth" means one path per
 * field per level with wildcards, and that cost the API a measurable share of its throughput
 * (see bench/http-floor). One walk over the object, which is usually a handful of keys, is
 * both cheaper and complete.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object' || depth > REDACT_DEPTH) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const redacted = redactSecrets(item, depth + 1);
      if (redacted !== item) {
        copy ??= [...(value as unknown[])];
        copy[i] = redacted;
      }
    }
    return (copy ?? value) as T;
  }
  if (!isPlainObject(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const key in value) {
    const item = value[key];
    const redacted = isSecretKey(key) && item !== undefined ? REDACTED : redactSecrets(item, depth + 1);
    if (redacted !== item) {
      copy ??= { ...value };
      copy[key] = redacted;
    }
  }
  return (copy ?? value) as T;
}
