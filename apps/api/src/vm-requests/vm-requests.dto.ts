import { parseDuration, VM_REQUEST_STATES } from '@norm/core';
import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { antiAffinityGroup } from '../placement/placement.dto';

/** RFC 1123 label: it becomes the Xen domain name and a hostname, and reaches a remote shell. */
export const rfc1123Label = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'an RFC 1123 label: a-z, 0-9 and -, at most 63, no - at either end',
  );

const labelKey = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/, 'a label key: a-z, 0-9, . _ / -');

/**
 * A heartbeat timeout written like `"5m"` or `"90s"`, parsed to ms. Its bounds are site
 * settings, so the domain checks them (a 400 naming `heartbeatTimeout` either way).
 */
export const heartbeatTimeoutParam = z
  .string()
  .max(32, 'at most 32 characters')
  .transform((t, ctx) => {
    try {
      return parseDuration(t);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

export class CreateVmRequestDto extends createZodDto(
  z.strictObject({
    name: rfc1123Label,
    vcpus: z.number().int('a whole number').min(1, 'at least 1'),
    memoryMb: z.number().int('a whole number of MiB').min(1, 'at least 1'),
    diskGb: z.number().int('a whole number of GB').min(1, 'at least 1'),
    imageId: z.uuid('an image id'),
    networkId: z.uuid('a network id'),
    lifecycleClass: z.enum(['cattle', 'pet']),
    antiAffinityGroup: antiAffinityGroup.optional(),
    labels: z
      .record(labelKey, z.string().max(255, 'at most 255 characters'))
      .refine((l) => Object.keys(l).length <= 32, 'at most 32 labels')
      .optional(),
    purpose: z.string().max(1000, 'at most 1000 characters').optional(),
    heartbeatTimeout: heartbeatTimeoutParam.optional(),
  }),
) {}

const labelFilter = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._/-]*=.{0,255}$/, 'key=value')
  .transform((t) => {
    const i = t.indexOf('=');
    return { key: t.slice(0, i), value: t.slice(i + 1) };
  });

export class VmRequestListQuery extends createZodDto(
  z.object({
    state: z.enum(VM_REQUEST_STATES).optional(),
    owner: z.uuid().optional(),
    label: labelFilter.optional(),
    cursor: z.string().min(1).max(200).optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  }),
) {}

export class CancelVmRequestDto extends createZodDto(
  z.strictObject({ reason: z.string().min(1).max(500).optional() }),
) {}

/** `?wait=30s`: how long an action or operation read may wait for the result; at most 60s. */
export const waitParam = z
  .string()
  .transform((t, ctx) => {
    try {
      return parseDuration(t);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  })
  .pipe(z.number().max(60_000, 'at most 60s'))
  .optional();

export { labelFilter };
