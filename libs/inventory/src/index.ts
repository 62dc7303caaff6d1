export { DataSource } from 'typeorm';
export * from './data-source.options';
export * from './entities';
export * from './outbox/outbox.repository';
export * from './operations/operation.repository';
export * from './audit/audit.repository';
export * from './identity/identity.repository';
