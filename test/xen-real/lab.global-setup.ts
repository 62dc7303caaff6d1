import { createServer } from 'node:net';
import { labScript } from './harness/lab';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The loopback port QEMU's guestfwd connects guests' 10.0.2.100:8080 to: Norm's API listens there. */
    xenlabApiPort: number;
  }
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? ok(address.port) : fail(new Error('no port')),
      );
    });
  });
}

/**
 * Builds (cached) and boots the real Xen lab before the tier, and always stops it afterwards,
 * failed or not. A machine without QEMU or the Debian packages fails here, loudly: the tier
 * never skips.
 */
export default async function setup(project: {
  provide(key: 'xenlabApiPort', value: number): void;
}): Promise<() => Promise<void>> {
  // Debugging only: attach to a lab already started with lab/start.sh (booted with this
  // XENLAB_API_PORT) and leave it running afterwards.
  if (process.env.XENLAB_ATTACH === '1') {
    project.provide('xenlabApiPort', Number(process.env.XENLAB_API_PORT ?? 18080));
    return () => Promise.resolve();
  }
  const apiPort = await freePort();
  const env = { XENLAB_API_PORT: String(apiPort) };
  try {
    await labScript('start.sh', env);
  } catch (err) {
    await labScript('stop.sh');
    throw err;
  }
  project.provide('xenlabApiPort', apiPort);
  return () => labScript('stop.sh');
}
