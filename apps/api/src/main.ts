import { createRootLogger, loadConfigOrExit } from '@norm/platform';
import { createApiApp } from './api-app';

async function main(): Promise<void> {
  const config = loadConfigOrExit('api');
  // Until Nest is up, failures are logged by a logger of our own with the same settings.
  const bootLog = createRootLogger({ app: 'api', level: config.logLevel });
  let app;
  try {
    app = await createApiApp({ config });
  } catch (err) {
    bootLog.fatal({ err }, 'api failed to start');
    process.exit(1);
  }
  // SIGTERM/SIGINT close the HTTP server (in-flight requests finish), then Postgres and Redis.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      // A request that never finishes must not keep a stopping process alive forever.
      setTimeout(() => {
        bootLog.error({ graceMs: config.shutdownGraceMs }, 'shutdown grace exceeded, exiting');
        process.exit(1);
      }, config.shutdownGraceMs).unref();
    });
  }
  await app.listen(config.apiPort, config.apiHost);
  bootLog.info({ host: config.apiHost, port: config.apiPort }, 'api listening');
}

void main();
