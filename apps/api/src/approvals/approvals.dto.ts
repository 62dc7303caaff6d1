import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { rfc1123Label } from '../vm-requests/vm-requests.dto';

const stepName = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'a step name from the approval policy');

export class DecideApprovalDto extends createZodDto(
  z
    .strictObject({
      step: stepName,
      decision: z.enum(['approve', 'reject']),
      comment: z.string().max(2000, 'at most 2000 characters').optional(),
    })
    .refine((b) => b.decision !== 'reject' || (b.comment ?? '').trim().length > 0, {
      path: ['comment'],
      message: 'required when rejecting',
    }),
) {}

export class ApprovalCallbackDto extends createZodDto(
  z.strictObject({
    decision: z.enum(['approve', 'reject']),
    reason: z.string().max(2000, 'at most 2000 characters').optional(),
  }),
) {}

export class CallbackParams extends createZodDto(
  z.strictObject({ requestId: z.uuid('a request id'), step: stepName }),
) {}

export class PolicyPreviewDto extends createZodDto(
  z.strictObject({
    name: rfc1123Label,
    vcpus: z.number().int('a whole number').min(1, 'at least 1'),
    memoryMb: z.number().int('a whole number of MiB').min(1, 'at least 1'),
    diskGb: z.number().int('a whole number of GB').min(1, 'at least 1'),
    imageId: z.uuid('an image id').optional(),
    networkId: z.uuid('a network id').optional(),
    lifecycleClass: z.enum(['cattle', 'pet']),
    labels: z.record(z.string().max(63), z.string().max(255)).optional(),
  }),
) {}
