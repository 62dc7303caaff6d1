export * from './observed-domain';
export * from './drift';
export * from './host.port';
export * from './observe-host';
