import { DomainError, NotFound } from '../errors';
import { type AuthSubject } from './principal';
import { type Permission, type Scope } from './permissions';

export class Unauthenticated extends DomainError {
  constructor(reason: string) {
    // The reason is logged, never returned: it would tell a prober which tokens exist.
    super('Unauthenticated', 'authentication required', { reason });
  }
}

export class Forbidden extends DomainError {
  constructor(permission: string) {
    super('Forbidden', 'not permitted', { permission });
  }
}

export class RateLimited extends DomainError {
  constructor(
    readonly bucket: string,
    readonly retryAfterS: number,
  ) {
    super('RateLimited', 'too many requests', { bucket, retryAfterS });
  }
}

/** The scope the subject holds for a permission, or Forbidden. */
export function authorize(subject: AuthSubject, permission: Permission): Scope {
  const scope = subject.grants[permission];
  if (!scope) throw new Forbidden(permission);
  return scope;
}

/** Who owns an object, as the object-level check needs it. */
export interface OwnedObject {
  /** Principal id of the owner (requests, instances). */
  ownerId?: string | null;
  /** For instance credentials: the instance the object is (or belongs to). */
  instanceId?: string | null;
}

/**
 * Object-level check for routes that load one object. With an `own` grant, someone else's
 * object answers NotFound, exactly like an id that does not exist, so ids cannot be probed.
 * Call it after loading the object and before returning or acting on it.
 */
export function authorizeObject(
  subject: AuthSubject,
  permission: Permission,
  object: OwnedObject,
  kind: string,
  id: string,
): void {
  const scope = subject.grants[permission];
  if (!scope) throw new Forbidden(permission);
  if (scope === 'any') return;
  const mine =
    subject.kind === 'principal'
      ? object.ownerId != null && object.ownerId === subject.principal.id
      : object.instanceId != null && object.instanceId === subject.instanceId;
  if (!mine) throw new NotFound(kind, id);
}

/**
 * For list routes: the owner to filter by (`own` scope), or undefined to list everything.
 * Throws Forbidden without the permission.
 */
export function ownerFilter(subject: AuthSubject, permission: Permission): string | undefined {
  const scope = authorize(subject, permission);
  if (scope === 'any') return undefined;
  return subject.kind === 'principal' ? subject.principal.id : `instance:${subject.instanceId}`;
}
