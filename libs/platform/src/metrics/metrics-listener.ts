import { createServer, type Server } from 'node:http';
import { type Logger } from '@norm/core';
import { type PromMetrics } from './prom-metrics';

/**
 * A bare HTTP listener for a process without an API (the worker): `GET /metrics` and nothing
 * else. No authentication, so it binds where the operator says (loopback by default). A port
 * it cannot bind is logged, not fatal: metrics must never stop the jobs.
 */
export async function serveMetrics(
  metrics: PromMetrics,
  options: { host: string; port: number },
  log: Logger,
): Promise<{ port: number | null; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.exposition().then(
      ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
      (error: unknown) => {
        log.error('metrics exposition failed', {
          error: error instanceof Error ? error.message : String(error),
        });
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', (error) => {
      log.error('metrics listener failed', { ...options, error: error.message });
      resolve(false);
    });
    server.listen(options.port, options.host, () => resolve(true));
  });
  if (!listening) return { port: null, close: () => Promise.resolve() };
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  log.info('metrics listening', { host: options.host, port });
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
