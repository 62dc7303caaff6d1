import { parseDuration, ROLES } from '@norm/core';
import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';

/**
 * Strict objects everywhere: an unknown field is a 400, so nobody can slip in `roles` on a
 * route that does not take them, or `owner`, `state`, `approvedBy` anywhere (mass assignment).
 */
const name = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$/,
    'letters, digits, . _ @ - (at most 63), starting with a letter or digit',
  );
const group = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and -, at most 63');

export class CreatePrincipalDto extends createZodDto(
  z.strictObject({
    kind: z.enum(['person', 'service']),
    name,
    roles: z.array(z.enum(ROLES)).max(ROLES.length).default([]),
    groups: z.array(group).max(64).default([]),
  }),
) {}

const lifetime = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

export class CreateTokenDto extends createZodDto(
  z.strictObject({
    name: z.string().min(1).max(100),
    /** Written like `30d` or `12h`; defaults to NORM_TOKEN_DEFAULT_TTL, capped by NORM_TOKEN_MAX_TTL. */
    expiresIn: lifetime.optional(),
  }),
) {}

export class PrincipalParams extends createZodDto(z.strictObject({ id: z.uuid() })) {}

export class TokenParams extends createZodDto(z.strictObject({ id: z.uuid(), tokenId: z.uuid() })) {}
