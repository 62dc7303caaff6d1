import { APPROVAL_EVENTS, DELIVERY_STATUSES } from '@norm/core';
import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';

export class DeliveryListQuery extends createZodDto(
  z.strictObject({
    status: z.enum(DELIVERY_STATUSES).optional(),
    event: z.enum(APPROVAL_EVENTS).optional(),
    subscription: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,62}$/, 'a subscription name from the policy file')
      .optional(),
    request: z.uuid('a request id').optional(),
    cursor: z.string().min(1).max(200).optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  }),
) {}
