import { Module } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { ApiExceptionFilter } from './api-exception.filter';
import { NormValidationPipe } from './validation.pipe';

/**
 * The API's global HTTP behaviour, registered through DI (APP_*) so every route, including
 * those of modules added by tests and benchmarks, passes through the same pipe and filter.
 */
@Module({
  providers: [
    { provide: APP_FILTER, useClass: ApiExceptionFilter },
    { provide: APP_PIPE, useClass: NormValidationPipe },
  ],
})
export class ApiHttpModule {}
