import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ -, at most 63');
/** LVM's own rules for VG/LV names, minus the characters that would need quoting. */
const lvmName = z
  .string()
  .regex(/^[A-Za-z0-9+_][A-Za-z0-9+_.-]{0,126}$/, 'an LVM name: letters, digits, + _ . -');
const dom0Path = z.string().regex(/^\/[A-Za-z0-9._/-]{1,254}$/, 'an absolute path of safe characters');

const boot = z.discriminatedUnion('method', [
  z.strictObject({ method: z.literal('pygrub') }),
  z.strictObject({
    method: z.literal('kernel'),
    kernel: dom0Path,
    ramdisk: dom0Path.nullable().default(null),
    kernelArgs: z
      .string()
      .regex(/^[A-Za-z0-9 =._,:/-]{0,512}$/, 'letters, digits, space and = . _ , : / -')
      .nullable()
      .default(null),
  }),
]);

const goldenVolume = z.strictObject({ hostId: z.uuid().optional(), vg: lvmName, lv: lvmName });

const image = z.strictObject({
  name,
  osLabel: z.string().min(1).max(100),
  boot,
  defaultDiskGb: z.number().int().min(1).max(65_536),
  goldenVolumes: z.array(goldenVolume).min(1, 'name at least one golden volume').max(256),
});

export class CreateImageDto extends createZodDto(image) {}

export class PatchImageDto extends createZodDto(
  image.partial().refine((p) => Object.keys(p).length > 0, 'name at least one field to change'),
) {}
