export * from './xen-host.port';
export * from './clock.port';
export * from './logger.port';
export * from './metrics.port';
