export * from './redis-connection';
export * from './bull-job-publisher';
export * from './job-runner';
