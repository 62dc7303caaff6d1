export * from './placement';
export * from './placement-hosts';
export * from './placement.service';
