export * from './placement';
export * from './placement-hosts';
