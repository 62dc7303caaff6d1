/** Injection tokens for identity's ports (interfaces have no runtime value to inject by). */
export const REQUEST_GATE = Symbol('RequestGate');
export const AUDIT_READER = Symbol('AuditReader');
export const IDENTITY_REDIS = Symbol('IdentityRedis');
