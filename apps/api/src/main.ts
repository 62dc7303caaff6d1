import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { createRootLogger, loadConfigOrExit, PinoLoggerAdapter } from '@norm/platform';
import { SshXenHostFactory } from '@norm/xen';
import { createApiApp } from './api-app';

async function main(): Promise<void> {
  const config = loadConfigOrExit('api');
  // Until Nest is up, and after it is gone, lines go through a logger with the same settings.
  const processLog = createRootLogger({ app: 'api', level: config.logLevel });
  let app: NestFastifyApplication;
  let xen: SshXenHostFactory | undefined;
  try {
    // Registration probes hosts over SSH. Without any key the API still serves everything
    // else and answers registration with 503; a configured key that is unusable fails here.
    xen = SshXenHostFactory.fromConfigIfKeyed(config, new PinoLoggerAdapter(processLog));
    if (!xen)
      processLog.warn(
        { settings: ['NORM_SSH_KEY_PATH', 'NORM_SSH_PRIVATE_KEY', `${config.stateDir}/ssh/id_ed25519`] },
        'no SSH key configured: host registration answers 503 until one is',
      );
    app = await createApiApp({ config, xen });
  } catch (err) {
    processLog.fatal({ err }, 'api failed to start');
    await xen?.close();
    process.exit(1);
  }
  // SIGTERM/SIGINT: stop accepting, let in-flight requests finish, then close Postgres and Redis.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  // The SSH pool closes with the HTTP server, after in-flight registrations have finished.
  const pool = xen;
  if (pool)
    app
      .getHttpAdapter()
      .getInstance()
      .addHook('onClose', () => pool.close());
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
