/**
 * The permission model. Routes declare one permission each (`@RequirePermission(...)` in
 * apps/api); roles grant permissions, each with a scope:
 *   - `any`: on every object of that kind;
 *   - `own`: only on objects the principal owns (the route loads the object and calls
 *     `authorizeObject`, which answers NotFound for someone else's, so ids cannot be probed).
 * A principal may hold several roles; its grants are the union, `any` winning over `own`.
 *
 * ROLE_GRANTS below IS the documentation. Later issues add their permissions to `PERMISSIONS`,
 * describe them in `PERMISSION_DOCS` and grant them here, in the same change as the route
 * that needs them.
 */

export const ROLES = ['viewer', 'requester', 'approver', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = [
  // identity and audit (this issue)
  'tokens:self', // read one's own identity and token (GET /v1/tokens/self)
  'principals:read',
  'principals:write', // create and delete principals
  'tokens:read', // list any principal's tokens (never the secret)
  'tokens:write', // create and revoke tokens for any principal
  'audit:read',
  'audit:verify',
  // VM requests and approvals
  'vm-requests:read',
  'vm-requests:create',
  'vm-requests:act', // cancel, resubmit, … one's own request
  'approvals:read',
  'approvals:decide', // decide steps assigned to the principal's groups
  // instances
  'instances:read',
  'instances:act', // start, stop, reboot, decommission
  'instances:heartbeat', // only instance credentials hold it, and only for their own instance
  // infrastructure
  'hosts:read',
  'hosts:write',
  'images:read',
  'images:write',
  'networks:read',
  'networks:write',
  'maintenance:write',
  'placement:read',
  'lifecycle:read',
  // notifications and metrics
  'webhooks:read', // the outbound webhook delivery log (payloads name requests and groups)
  'webhooks:write', // resend a delivery
  'metrics:read', // GET /metrics: counts and durations, no request contents
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export type Scope = 'own' | 'any';
export type Grants = Readonly<Partial<Record<Permission, Scope>>>;

/**
 * Every role may read itself and manage its own tokens (`/v1/principals/<own id>/tokens`):
 * personal tokens for CI or a second laptop need no admin, and someone else's id answers 404.
 */
const SELF_SERVICE: Grants = {
  'tokens:self': 'any',
  'principals:read': 'own',
  'tokens:read': 'own',
  'tokens:write': 'own',
};

const READ_ALL: Grants = {
  ...SELF_SERVICE,
  'vm-requests:read': 'any',
  'approvals:read': 'any',
  'instances:read': 'any',
  'hosts:read': 'any',
  'images:read': 'any',
  'networks:read': 'any',
  'placement:read': 'any',
  'lifecycle:read': 'any',
  'metrics:read': 'any',
};

/**
 * role → permission → scope. README's "Identity, tokens and audit" table is printed from
 * this and PERMISSION_DOCS (`node -r ./scripts/register.js scripts/permissions-table.ts`), and
 * readme-permissions.spec.ts fails when the two part ways, so there is no hand-drawn copy
 * here to drift. The approval service further limits `approvals:decide` to steps naming one
 * of the approver's groups.
 */
export const ROLE_GRANTS: Readonly<Record<Role, Grants>> = {
  viewer: READ_ALL,
  requester: {
    ...SELF_SERVICE,
    'vm-requests:read': 'own',
    'vm-requests:create': 'own',
    'vm-requests:act': 'own',
    'instances:read': 'own',
    'instances:act': 'own',
    // A requester picks an image and a network when asking for a VM.
    'images:read': 'any',
    'networks:read': 'any',
  },
  approver: { ...READ_ALL, 'approvals:decide': 'any' },
  operator: {
    ...READ_ALL,
    'vm-requests:act': 'any',
    'instances:act': 'any',
    'hosts:write': 'any',
    'images:write': 'any',
    'networks:write': 'any',
    'maintenance:write': 'any',
    'audit:read': 'any',
    'webhooks:read': 'any',
    'webhooks:write': 'any',
  },
  admin: Object.fromEntries(
    PERMISSIONS.filter((p) => p !== 'instances:heartbeat').map((p) => [p, 'any' as const]),
  ),
};

/** What each permission lets a principal do, for the README table; every permission needs a line. */
export const PERMISSION_DOCS: Readonly<Record<Permission, string>> = {
  'tokens:self': 'read the calling token and its principal (`GET /v1/tokens/self`)',
  'principals:read': 'read principals (`own`: only oneself)',
  'principals:write': 'create and delete principals (deleting one revokes its tokens)',
  'tokens:read': "list a principal's tokens, never their secrets (`own`: one's own)",
  'tokens:write': "create and revoke a principal's tokens (`own`: one's own)",
  'audit:read': 'list and filter the audit log',
  'audit:verify': 'check the audit hash chain and its head',
  'vm-requests:read': "read VM requests (`own`: one's own; others answer 404)",
  'vm-requests:create': 'ask for a VM',
  'vm-requests:act': "cancel a request (`own`: one's own)",
  'approvals:read': 'read the approval policy, preview it, see the inbox',
  'approvals:decide': "approve or reject steps that name one of the caller's groups",
  'instances:read': "read instances, their operations and the Ansible inventory (`own`: one's own)",
  'instances:act': "start, stop, reboot, decommission (`own`: one's own)",
  'instances:heartbeat': "an instance's own heartbeat: instance tokens only, no role grants it",
  'hosts:read': 'read hosts and drift',
  'hosts:write': 'register, change and remove hosts',
  'images:read': 'read images',
  'images:write': 'create, change and remove images',
  'networks:read': 'read networks',
  'networks:write': 'create and remove networks',
  'maintenance:write':
    'host maintenance, reaper pause/resume/reset, deregistration retries, Alertmanager and Sensu intake',
  'placement:read': 'preview placement',
  'lifecycle:read': 'reaper status and preview, deregistrations',
  'webhooks:read': 'the notification delivery log (`GET /v1/webhooks/deliveries`)',
  'webhooks:write': 'resend a notification delivery',
  'metrics:read': 'scrape `GET /metrics` (counts and durations, no request contents)',
};

/** What an instance credential may do: its own heartbeat, nothing else. */
export const INSTANCE_GRANTS: Grants = { 'instances:heartbeat': 'own' };

export function grantsForRoles(roles: readonly Role[]): Grants {
  const out: Partial<Record<Permission, Scope>> = {};
  for (const role of roles) {
    for (const [permission, scope] of Object.entries(ROLE_GRANTS[role]) as Array<[Permission, Scope]>) {
      if (out[permission] !== 'any') out[permission] = scope;
    }
  }
  return out;
}

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

/** The README's role table: one row per permission, one column per role (scope, or empty). */
export function permissionsTable(): string {
  const rows = PERMISSIONS.map((p) => {
    const cells = ROLES.map((r) => ROLE_GRANTS[r][p] ?? '');
    return `| \`${p}\` | ${PERMISSION_DOCS[p]} | ${cells.join(' | ')} |`;
  });
  return [
    `| permission | lets the caller | ${ROLES.join(' | ')} |`,
    `| --- | --- | ${ROLES.map(() => '---').join(' | ')} |`,
    ...rows,
  ].join('\n');
}
