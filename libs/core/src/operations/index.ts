export * from './operation.port';
export * from './pipeline-probe.handler';
