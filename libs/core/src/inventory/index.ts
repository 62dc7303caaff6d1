export * from './observed-domain';
export * from './drift';
export * from './host.port';
export * from './observe-host';
export * from './catalogue.port';
export * from './host.service';
export * from './catalogue.service';
export * from './leader-lock.port';
