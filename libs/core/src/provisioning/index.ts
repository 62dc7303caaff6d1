export * from './host-slots.port';
export * from './host-limiter';
export * from './fifo-gate';
export * from './vm-provision.handler';
export * from './stuck-work.loop';
export * from './guest-bootstrap';
export * from './nocloud-seed.renderer';
