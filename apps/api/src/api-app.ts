import { NestFactory } from '@nestjs/core';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig } from '@norm/core';
import { createRootLogger, NORM_PINO, PinoNestLogger, registerRequestLogging } from '@norm/platform';
import { Logger } from 'nestjs-pino';
import { type Logger as Pino } from 'pino';
import { AppModule, type AppModuleOptions } from './app.module';
import { createFastifyAdapter } from './http/fastify-adapter';
import { setupOpenApi } from './openapi/openapi';

export type ApiAppOptions = AppModuleOptions;

/**
 * Builds the API application without listening, so main.ts, e2e tests and benchmarks start
 * exactly the same app. Call `app.listen(port, host)` (or `app.init()` and `app.inject()`).
 * Connections to Postgres and Redis are opened here: a missing Postgres rejects.
 */
export async function createApiApp(options: ApiAppOptions = {}): Promise<NestFastifyApplication> {
  const config = options.config ?? loadConfig();
  // Nest logs while it builds the app, and on a failed boot, before the container's logger exists.
  const bootLog = createRootLogger({
    app: 'api',
    level: config.logLevel,
    destination: options.logDestination,
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot({ ...options, config }),
    createFastifyAdapter(),
    {
      logger: new PinoNestLogger(bootLog),
      // Throw boot failures to the caller; the default would abort() the process with a core dump.
      abortOnError: false,
    },
  );
  // From here on Nest's lines go through nestjs-pino, which adds the request's context.
  app.useLogger(app.get(Logger));
  // Before any route exists, so the hooks cover every route, Swagger's included.
  registerRequestLogging(app.getHttpAdapter().getInstance(), app.get<Pino>(NORM_PINO));
  setupOpenApi(app);
  return app;
}
