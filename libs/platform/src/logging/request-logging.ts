import { type ServerResponse } from 'node:http';
import { pino, type Logger as Pino } from 'pino';
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
    name: 'onRequest' | 'onResponse',
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

/** The pino internals a hand-built line needs, read once (pino exports these symbols for this). */
interface LineParts {
  /** `{"level":"info"` as this logger's level formatter writes it. */
  levelPrefix: string;
  /** The timestamp function's output: `,"time":"…"`. */
  time: () => string;
  /** The root's bindings, already serialized: `,"app":"api","pid":…,"hostname":"…"`. */
  chindings: string;
  stream: { write(line: string): unknown };
}

function lineParts(root: Pino): LineParts {
  const internals = root as unknown as Record<symbol, unknown>;
  const levels = internals[pino.symbols.lsCacheSym] as Record<number, string>;
  return {
    levelPrefix: levels[root.levels.values.info!]!,
    time: internals[pino.symbols.timeSym] as () => string,
    chindings: internals[pino.symbols.chindingsSym] as string,
    stream: internals[pino.symbols.streamSym] as LineParts['stream'],
  };
}

/**
 * The successful request's completion line, built as one string: field for field what
 * `root.info(completion(request, reply), 'request completed')` writes (a unit test compares
 * the two), without pino's generic walk over the object (redaction, serializer lookups, one
 * stringify per nested value). It is the line the API writes most, and that walk was about
 * a tenth of the API's CPU in bench/http-floor's profile. Its fields are fixed and none can
 * hold a secret (the redaction works on field names), so nothing is lost by skipping it.
 */
function successLine(parts: LineParts, request: HookRequest, reply: HookReply): string {
  return (
    `${parts.levelPrefix}${parts.time()}${parts.chindings},"requestId":${JSON.stringify(request.id)}` +
    `,"req":{"method":${JSON.stringify(request.method)},"url":${JSON.stringify(request.url)}}` +
    `,"res":{"statusCode":${reply.statusCode}},"responseTime":${Math.round(reply.elapsedTime * 10) / 10}` +
    `,"msg":"request completed"}\n`
  );
}

export function registerRequestLogging(fastify: RequestHookTarget, root: Pino): void {
  const parts = lineParts(root);
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });

  fastify.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    if (status < 400) {
      if (root.isLevelEnabled('info') && !QUIET_PATHS.has(pathOf(request.url)))
        parts.stream.write(successLine(parts, request, reply));
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
