export * from './api-app';
export * from './app.module';
export * from './http/error-mapping';
export * from './http/error-body';
export * from './http/api-exception.filter';
export * from './openapi/openapi';
