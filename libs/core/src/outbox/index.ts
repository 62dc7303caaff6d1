export * from './outbox.port';
export * from './outbox-relay';
