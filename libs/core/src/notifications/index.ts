export * from './approval-events';
export * from './approval-notifier';
export * from './webhook-delivery.port';
export * from './webhook-delivery.service';
export * from './webhook-delivery.loop';
export * from './webhook-subscriptions';
