/** What every redacted value is replaced with, in logs and in tests that assert on them. */
export const REDACTED = '[redacted]';

/** Field names whose values are credentials wherever they appear in a logged object. */
export const SECRET_FIELDS = [
  'token',
  'accessToken',
  'refreshToken',
  'password',
  'passphrase',
  'secret',
  'clientSecret',
  'privateKey',
  'authorization',
  'cookie',
] as const;

/**
 * How many object levels below the log line's root a secret field is still caught. pino's
 * redaction matches explicit paths (a `*` stands for one level, never for many), so depth
 * is enumerated; four covers `{ host: { ssh: { auth: { privateKey } } } }`-style data while
 * keeping the generated path list (and pino's per-line redaction work) small.
 */
export const REDACT_DEPTH = 4;

/**
 * Header names that are not valid path identifiers; `authorization` and `cookie` headers are
 * already covered as secret fields at any depth.
 */
const HEADER_PATHS = [
  'req.headers["x-api-key"]',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers["x-api-key"]',
  'headers["set-cookie"]',
];

/** The path list for pino's `redact.paths`: every secret field at depths 0..REDACT_DEPTH, plus headers. */
export function redactPaths(depth: number = REDACT_DEPTH): string[] {
  const paths = [...HEADER_PATHS];
  for (let level = 0; level <= depth; level++) {
    const prefix = '*.'.repeat(level);
    for (const field of SECRET_FIELDS) paths.push(`${prefix}${field}`);
  }
  return paths;
}
