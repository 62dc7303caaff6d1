/**
 * Keys whose values are credentials. Callers should never put them in an audit event;
 * this is the safety net that keeps a mistake from making a secret permanent in an
 * append-only, tamper-evident log.
 */
const SECRET_KEYS = new Set([
  'token',
  'secret',
  'password',
  'passphrase',
  'privatekey',
  'secrethash',
  'tokenhash',
  'authorization',
]);

export const REDACTED = '[redacted]';

export function redactSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v: unknown) => redactSecrets(v)) as T;
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = SECRET_KEYS.has(k.toLowerCase().replace(/[_-]/g, '')) ? REDACTED : redactSecrets(v);
    }
    return out as T;
  }
  return value;
}
