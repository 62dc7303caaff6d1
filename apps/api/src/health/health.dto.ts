import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';

const dependencyStatus = z.object({ status: z.enum(['up', 'down']), message: z.string().optional() });

export class LivenessDto extends createZodDto(z.object({ status: z.literal('ok') })) {}

export class ReadinessDto extends createZodDto(
  z
    .object({
      status: z.literal('ok'),
      details: z.record(z.string(), dependencyStatus),
    })
    .meta({ description: 'Every dependency answered; `details` has one entry per dependency.' }),
) {}
