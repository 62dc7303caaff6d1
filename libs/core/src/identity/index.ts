export * from './permissions';
export * from './principal';
export * from './identity.port';
export * from './authorization';
export * from './token-secret';
export * from './token-authenticator';
export * from './identity.service';
