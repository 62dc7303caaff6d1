export * from './vm-request.state';
export * from './approval-pipeline';
export * from './vm-request.port';
export * from './vm-request.service';
export * from './vm-request.factory';
