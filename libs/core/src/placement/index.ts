export * from './placement';
export * from './placement.service';
