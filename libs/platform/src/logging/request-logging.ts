import { type ServerResponse } from 'node:http';
import { type Logger as Pino } from 'pino';
import { REQUEST_ID_HEADER } from './request-id';
import { responseError } from './response-error-code';

interface HookRequest {
  id: string;
  method: string;
  url: string;
}
interface HookReply {
  statusCode: number;
  elapsedTime: number;
  raw: ServerResponse;
  header(name: string, value: string): unknown;
}

/**
 * The part of a Fastify instance these hooks need. Structural, because Nest's adapter bundles
 * its own copy of Fastify whose types are not the root package's.
 */
export interface RequestHookTarget {
  addHook(
    name: 'onRequest' | 'preHandler' | 'onResponse',
    hook: (request: HookRequest, reply: HookReply, done: () => void) => void,
  ): unknown;
}

/** Paths whose successful requests are not logged: probes hit them every few seconds. */
const QUIET_PATHS = new Set(['/healthz', '/readyz']);

/**
 * The path of a request URL, without its query. Read from the URL rather than from Fastify's
 * `routeOptions`, whose getter builds a dozen-field object on every call.
 */
function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * Request logging for a Fastify-based host, as two Fastify hooks. The request id itself is
 * decided by the adapter's `genReqId` (see `requestIdFrom`), once, before any hook runs.
 *
 * - onRequest: echo the id in `x-request-id`, on every response including 404s and errors.
 * - onResponse: ONE completion line (method, url, status, time, and the error code and
 *   hidden details the exception filter noted); 4xx at warn, 5xx at error; successful probe
 *   requests are skipped.
 *
 * No async context (AsyncLocalStorage) carries the id into the domain. On Node 20 an
 * AsyncLocalStorage turns on promise hooks for every promise in the process, which cost the
 * API a third of its throughput (bench/http-floor: 14.5k -> 21.5k req/s without it). The
 * domain already receives the request id with the acting subject (`ActingContext.requestId`,
 * also written to the audit), and the few lines it logs on behalf of a request name it
 * explicitly.
 *
 * This replaces nestjs-pino's pino-http middleware: that path ran every request through
 * middie and Nest's middleware wrapper and built two child loggers, which cost the API a
 * large share of its throughput. Nest's own log lines still go through nestjs-pino's `Logger`.
 */
interface CompletionLine {
  requestId: string;
  req: { method: string; url: string };
  res: { statusCode: number };
  responseTime: number;
  errorCode?: string;
  errorDetails?: Readonly<Record<string, unknown>>;
}

/** The completion line's fields; the error fields are only added when there is an error. */
function completion(request: HookRequest, reply: HookReply): CompletionLine {
  return {
    requestId: request.id,
    req: { method: request.method, url: request.url },
    res: { statusCode: reply.statusCode },
    responseTime: Math.round(reply.elapsedTime * 10) / 10,
  };
}

export function registerRequestLogging(fastify: RequestHookTarget, root: Pino): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });

  fastify.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    if (status < 400) {
      if (!QUIET_PATHS.has(pathOf(request.url))) root.info(completion(request, reply), 'request completed');
      return done();
    }
    const line = completion(request, reply);
    const error = responseError(reply.raw);
    if (error !== undefined) {
      line.errorCode = error.code;
      if (error.details !== undefined) line.errorDetails = error.details;
    }
    if (status >= 500) root.error(line, 'request completed');
    else root.warn(line, 'request completed');
    done();
  });
}
