import { type IncomingMessage } from 'node:http';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { REQUEST_ID_HEADER, requestIdFrom } from '@norm/platform';

/**
 * Body size cap. Norm's requests are small JSON documents (a VM request, an approval); 1 MiB
 * leaves room for label-heavy payloads while refusing accidental uploads (413).
 */
const BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * Fastify decides the request id once, before anything else runs: the request logging
 * hooks, the exception filter and the response header all read `request.id`, so they agree.
 */
export function createFastifyAdapter(): FastifyAdapter {
  return new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: (req: IncomingMessage) => requestIdFrom(req.headers[REQUEST_ID_HEADER]),
    // Requests are logged by @norm/platform's hooks; Fastify's own logger would log them twice.
    logger: false,
    // No Nest middleware is used (request logging is Fastify hooks), so @fastify/middie and
    // its per-request onRequest hook are not registered.
    skipMiddie: true,
  });
}
