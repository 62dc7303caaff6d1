import { INSTANCE_ACTIONS, INSTANCE_STATES } from '@norm/core';
import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { heartbeatTimeoutParam, labelFilter, waitParam } from '../vm-requests/vm-requests.dto';

export class InstanceListQuery extends createZodDto(
  z.object({
    state: z.enum(INSTANCE_STATES).optional(),
    owner: z.uuid().optional(),
    host: z.uuid().optional(),
    label: labelFilter.optional(),
    cursor: z.string().min(1).max(200).optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  }),
) {}

export class InstanceActionParams extends createZodDto(
  z.strictObject({ id: z.uuid(), action: z.enum(INSTANCE_ACTIONS) }),
) {}

/** `null` removes the instance's own timeout, so its class's applies again. */
export class UpdateInstanceDto extends createZodDto(
  z.strictObject({ heartbeatTimeout: heartbeatTimeoutParam.nullable() }),
) {}

export class WaitQuery extends createZodDto(z.object({ wait: waitParam })) {}
