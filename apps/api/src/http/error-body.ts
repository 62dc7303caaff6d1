import { z } from 'zod';
import { createZodDto } from 'nestjs-zod';

/**
 * The one error shape of the API. `requestId` equals the `x-request-id` response header and
 * the `requestId` of every log line of that request, so a user's report leads straight to
 * the logs.
 */
export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'Stable machine-readable code, e.g. NotFound, ValidationFailed' }),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
      requestId: z.string(),
    }),
  })
  .meta({ description: 'Every error response of the API' });

export type ErrorBody = z.infer<typeof errorBodySchema>;

export class ErrorResponseDto extends createZodDto(errorBodySchema) {}
