export * from './audit.port';
export * from './audit-chain';
export * from './redact';
