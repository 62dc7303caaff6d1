import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { createRootLogger, loadConfigOrExit } from '@norm/platform';
import { createApiApp } from './api-app';

async function main(): Promise<void> {
  const config = loadConfigOrExit('api');
  // Until Nest is up, and after it is gone, lines go through a logger with the same settings.
  const processLog = createRootLogger({ app: 'api', level: config.logLevel });
  let app: NestFastifyApplication;
  try {
    app = await createApiApp({ config });
  } catch (err) {
    processLog.fatal({ err }, 'api failed to start');
    process.exit(1);
  }
  // SIGTERM/SIGINT: stop accepting, let in-flight requests finish, then close Postgres and Redis.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      // A request that never finishes must not keep a stopping process alive forever.
      setTimeout(() => {
        processLog.error({ graceMs: config.shutdownGraceMs }, 'shutdown grace exceeded, exiting');
        process.exit(1);
      }, config.shutdownGraceMs).unref();
    });
  }
  await app.listen(config.apiPort, config.apiHost);
  processLog.info({ host: config.apiHost, port: config.apiPort }, 'api listening');
}

main().catch((err: unknown) => {
  // Only reachable if listening fails (port taken, bad host): logged once, with the cause.
  createRootLogger({ app: 'api', level: 'info' }).fatal({ err }, 'api failed to start');
  process.exit(1);
});
