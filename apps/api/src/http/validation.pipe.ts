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

/**
 * nestjs-zod's pipe, throwing the domain's ValidationFailed so validation errors reach the
 * client through the same filter and table as every other error: 400 with `details.issues`.
 */
export const NormValidationPipe = createZodValidationPipe({
  createValidationException: (error) => new ValidationFailed('request is invalid', validationIssues(error)),
});
