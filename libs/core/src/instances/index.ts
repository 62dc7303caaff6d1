export * from './instance.service';
export * from './instance-action.handler';
