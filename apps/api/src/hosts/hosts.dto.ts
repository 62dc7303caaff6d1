import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';

/**
 * Host input. Names and users reach a remote shell only quoted, but are validated here anyway:
 * a host name also appears in logs, labels and Ansible inventory.
 */
export const hostName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9.-]{0,62}$/,
    'lowercase letters, digits, . and -, at most 63, starting with a letter or digit',
  );
const address = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$/, 'a DNS name, IPv4 or IPv6 address');
const sshUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'a POSIX user name');
const fingerprint = z
  .string()
  .regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'SHA256:<43 base64 characters>, as `ssh-keygen -lf` prints it');
const labels = z
  .record(
    z.string().regex(/^[a-z0-9][a-z0-9._/-]{0,62}$/, 'label keys: lowercase letters, digits, . _ / -'),
    z.string().max(256),
  )
  .refine((l) => Object.keys(l).length <= 64, 'at most 64 labels');
const limits = z.strictObject({
  dom0ReserveMb: z.number().int().min(0).max(1_048_576).optional(),
  vcpuOvercommitRatio: z.number().min(0.1).max(64).optional(),
  /** Creates/destroys at once on this host, across every worker (NORM_PROVISION_HOST_CONCURRENCY otherwise). */
  provisionConcurrency: z.number().int().min(1).max(64).optional(),
});

export class CreateHostDto extends createZodDto(
  z.strictObject({
    name: hostName,
    address,
    port: z.number().int().min(1).max(65535).default(22),
    sshUser,
    /** The `norm` user runs xl/LVM through a sudoers drop-in (ansible/playbooks/xen-host.yml). */
    sudo: z.boolean().default(true),
    hostKeyFingerprint: fingerprint,
    labels: labels.default({}),
    limits: limits.default({}),
  }),
) {}

export class PatchHostDto extends createZodDto(
  z
    .strictObject({
      labels: labels.optional(),
      limits: limits.optional(),
      placementBlockedReason: z.string().min(1).max(500).nullable().optional(),
    })
    .refine((p) => Object.keys(p).length > 0, 'name at least one of labels, limits, placementBlockedReason'),
) {}

export class ScanHostKeyDto extends createZodDto(
  z.strictObject({ address, port: z.number().int().min(1).max(65535).default(22) }),
) {}

export class MaintenanceDto extends createZodDto(z.strictObject({ enabled: z.boolean() })) {}

export class IdParams extends createZodDto(z.strictObject({ id: z.uuid() })) {}
