export * from './errors';
export * from './ports';
export * from './config';
export * from './jobs';
export * from './outbox';
export * from './operations';
export * from './identity';
export * from './audit';
