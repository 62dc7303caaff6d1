import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { type Logger } from '@norm/core';
import { loadConfigOrExit, NORM_LOGGER } from '@norm/platform';
import { WorkerModule } from './worker.module';

/**
 * The worker: a NestJS standalone app (no HTTP) hosting the job handlers and the outbox
 * relay. SIGTERM/SIGINT stop it taking jobs and let running ones finish within
 * NORM_SHUTDOWN_GRACE before it exits.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit('worker');
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), {
    logger: ['error', 'warn'],
    abortOnError: false,
  });
  const log = app.get<Logger>(NORM_LOGGER);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('worker stopping', { signal });
    app
      .close()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        log.error('worker shutdown failed', { error });
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`norm-worker: failed to start: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
