export * from './deregistrar.port';
export * from './deregistration.port';
export * from './deregistration.service';
export * from './webhook.deregistrar';
export * from './command.deregistrar';
export * from './deregistration-targets';
export * from './deregistration.loop';
export * from './ansible-static.deregistrar';
