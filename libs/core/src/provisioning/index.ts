export * from './host-limiter';
export * from './vm-provision.handler';
