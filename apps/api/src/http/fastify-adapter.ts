import { type IncomingMessage } from 'node:http';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { REQUEST_ID_HEADER, requestIdFrom } from '@norm/platform';

/**
 * Body size cap. Norm's requests are small JSON documents (a VM request, an approval); 1 MiB
 * leaves room for label-heavy payloads while refusing accidental uploads (413).
 */
const BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * Fastify decides the request id once, before anything else runs: pino-http, the exception
 * filter and the response header all read `request.id`, so they always agree.
 */
export function createFastifyAdapter(): FastifyAdapter {
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: (req: IncomingMessage) => requestIdFrom(req.headers[REQUEST_ID_HEADER]),
    // Our logging is pino-http through nestjs-pino; Fastify's own would log every request twice.
    logger: false,
  });
  adapter.getInstance().addHook('onRequest', (request, reply, done) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });
  return adapter;
}
