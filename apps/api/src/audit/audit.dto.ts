import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';

export class AuditQueryDto extends createZodDto(
  // A plain object, not strict: proxies and tools add query parameters of their own.
  z.object({
    actor: z.string().min(1).max(200).optional(),
    action: z.string().min(1).max(200).optional(),
    objectType: z.string().min(1).max(100).optional(),
    objectId: z.string().min(1).max(200).optional(),
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
    cursor: z.string().min(1).max(200).optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  }),
) {}
