import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';

/**
 * Field-level shape here; whether the range and gateway fit the CIDR is checked in the domain
 * (validateNetworkRange), which also names the field at fault.
 */
export class CreateNetworkDto extends createZodDto(
  z.strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ -, at most 63'),
    /** Linux interface names are at most 15 characters. */
    bridge: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,15}$/, 'a Linux bridge name (at most 15 of letters, digits, _ . -)'),
    cidr: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'an IPv4 CIDR such as 10.0.0.0/24'),
    gateway: z.ipv4().nullable().default(null),
    rangeStart: z.ipv4(),
    rangeEnd: z.ipv4(),
  }),
) {}
