import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';

/** What the shipped agent posts (`{"seq":N,"uptime_s":U}`); every field is optional and only informative. */
export class HeartbeatBody extends createZodDto(
  // A bare POST (no body at all) is a beat too: agents as simple as `curl -X POST` must work.
  z.preprocess(
    (v) => v ?? {},
    z.strictObject({
      seq: z.number().int().min(0).optional(),
      uptime_s: z.number().min(0).optional(),
      agent_version: z.string().min(1).max(64).optional(),
    }),
  ),
) {}
