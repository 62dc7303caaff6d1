import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';

const count = (max: number) =>
  z.coerce.number({ error: 'must be a whole number' }).int('must be a whole number').min(1).max(max);

export class PlacementPreviewQuery extends createZodDto(
  z.strictObject({
    memoryMb: count(4_194_304),
    vcpus: count(512),
    diskGb: count(65_536),
    group: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and -, at most 63')
      .optional(),
    antiAffinity: z.enum(['hard', 'soft']).optional(),
    strategy: z.enum(['spread', 'pack']).optional(),
  }),
) {}
