import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';

/**
 * An anti-affinity group name, one schema for everywhere a group is named (a VM request's
 * `antiAffinityGroup`, the preview's `group`): a group a request may join must also be one the
 * preview can be asked about. It is stored and compared, never sent to a host.
 */
export const antiAffinityGroup = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ -, at most 63');

const count = (max: number) =>
  z.coerce.number({ error: 'must be a whole number' }).int('must be a whole number').min(1).max(max);

export class PlacementPreviewQuery extends createZodDto(
  z.strictObject({
    memoryMb: count(4_194_304),
    vcpus: count(512),
    diskGb: count(65_536),
    group: antiAffinityGroup.optional(),
    antiAffinity: z.enum(['hard', 'soft']).optional(),
    strategy: z.enum(['spread', 'pack']).optional(),
  }),
) {}
