import { type Grants, type Role } from './permissions';

export type PrincipalKind = 'person' | 'service';

export interface Principal {
  id: string;
  kind: PrincipalKind;
  name: string;
  roles: Role[];
  /** Approval steps name groups, e.g. `network-team`. */
  groups: string[];
  createdAt: Date;
}

export type TokenKind = 'api' | 'instance';

/** A token as anyone may see it: never the secret, never its hash. */
export interface TokenView {
  id: string;
  kind: TokenKind;
  principalId: string | null;
  instanceId: string | null;
  name: string;
  /** The public lookup part, so an operator can match a token they hold to its row. */
  prefix: string;
  expiresAt: Date | null;
  revokedAt: Date | null;
  createdAt: Date;
  createdBy: string | null;
}

/** Who is calling, once a bearer token checked out. */
export type AuthSubject =
  | { kind: 'principal'; principal: Principal; tokenId: string; grants: Grants }
  | { kind: 'instance'; instanceId: string; tokenId: string; grants: Grants };

/** The audit actor for a subject: the principal id, or `instance:<id>`. */
export function actorOf(subject: AuthSubject): string {
  return subject.kind === 'principal' ? subject.principal.id : `instance:${subject.instanceId}`;
}
