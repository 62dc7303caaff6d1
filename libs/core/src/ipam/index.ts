export * from './ipv4';
export * from './mac';
export * from './ipam.port';
