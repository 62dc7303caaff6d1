export * from './deregistrar.port';
export * from './deregistration.port';
export * from './deregistration.service';
export * from './webhook.deregistrar';
export * from './command.deregistrar';
