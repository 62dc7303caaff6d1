import { type ArgumentMetadata } from '@nestjs/common';
import { ValidationFailed } from '@norm/core';
import { createZodValidationPipe } from 'nestjs-zod';
import { ZodError } from 'zod';

/**
 * Request DTOs are `createZodDto(z.strictObject({...}))`. The convention matters: a strict
 * object rejects fields it does not know, so a typo (`memroyMb`) or a field the caller may
 * not set (`ownerId`) is a 400, never silently ignored or silently applied. Use `z.object`
 * only for query strings, where proxies and tools add parameters of their own.
 */
export function validationIssues(error: unknown): Array<{ path: string; message: string }> {
  if (!(error instanceof ZodError)) return [{ path: '', message: 'invalid request' }];
  return error.issues.flatMap((issue) =>
    // One issue per unknown field, at the field's own path: a client (or an attempt to set
    // `state` or `ownerId`) learns exactly which field is refused, as for any other bad field.
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((k) => ({
          path: [...issue.path, k].map(String).join('.'),
          message: 'unknown field: this request does not accept it',
        }))
      : [{ path: issue.path.map(String).join('.'), message: issue.message }],
  );
}

/** A UTF-16 surrogate without its partner: what `"\\ud83d"` in a JSON body parses into. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Text Postgres cannot store: a NUL (`"\\u0000"`), which no `text` or `jsonb` holds, or a lone surrogate. */
function isUnstorable(text: string): boolean {
  return text.includes('\u0000') || LONE_SURROGATE.test(text);
}

function unstorable(text: string): string | undefined {
  if (text.includes('\u0000')) return 'text must not hold a NUL character (\\u0000)';
  if (LONE_SURROGATE.test(text)) return 'text must be valid Unicode (it holds a lone surrogate escape)';
  return undefined;
}

/**
 * Where a parsed body, query or path holds text that Postgres cannot store, though JSON's
 * `\\uXXXX` escapes can spell it: a lone surrogate (a `jsonb` refuses it, a `text` column
 * silently becomes U+FFFD) or a NUL character (both refuse it). Keys count as much as values.
 */
export function illFormedText(value: unknown, path: string[] = []): Array<{ path: string; message: string }> {
  const at = (p: string[], message: string | undefined): Array<{ path: string; message: string }> =>
    message === undefined ? [] : [{ path: p.join('.'), message }];
  if (typeof value === 'string') return at(path, unstorable(value));
  if (Array.isArray(value)) return value.flatMap((v, i) => illFormedText(v, [...path, String(i)]));
  if (value !== null && typeof value === 'object')
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
      const key = unstorable(k);
      return key === undefined ? illFormedText(v, [...path, k]) : at([...path, k], key);
    });
  return [];
}

const ZodPipe = createZodValidationPipe({
  createValidationException: (error) => new ValidationFailed('request is invalid', validationIssues(error)),
});

/**
 * nestjs-zod's pipe, throwing the domain's ValidationFailed so validation errors reach the
 * client through the same filter and table as every other error: 400 with `details.issues`.
 * Text Postgres cannot store (a lone surrogate, a NUL) is refused first, whatever the DTO, so
 * no route can store a mangled string or fail on it in Postgres with a 500.
 */
export class NormValidationPipe extends ZodPipe {
  override transform(value: unknown, metadata: ArgumentMetadata): unknown {
    // What the client sent; a custom argument (the acting context) is the server's own.
    if (metadata.type !== 'custom' && holdsUnstorableText(value))
      throw new ValidationFailed('request is invalid', illFormedText(value));
    return super.transform(value, metadata);
  }
}

/** illFormedText's question without building paths: every request asks it, few fail it. */
function holdsUnstorableText(value: unknown): boolean {
  if (typeof value === 'string') return isUnstorable(value);
  if (Array.isArray(value)) return value.some(holdsUnstorableText);
  if (value !== null && typeof value === 'object') {
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      if (isUnstorable(key) || holdsUnstorableText((value as Record<string, unknown>)[key])) return true;
    }
  }
  return false;
}
