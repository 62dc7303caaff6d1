import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Logger as Pino } from 'pino';
import { type Options } from 'pino-http';
import { REQUEST_ID_HEADER, requestIdFrom } from './request-id';
import { responseErrorCode } from './response-error-code';

/** Paths whose successful requests are not logged: probes hit them every few seconds. */
const QUIET_PATHS = new Set(['/healthz', '/readyz']);

type RequestWithId = IncomingMessage & { id?: unknown };

/**
 * The path as the client sent it. Middleware runners (middie, Nest's Fastify adapter) rewrite
 * `url` relative to the middleware's mount point and keep the original in `originalUrl`.
 */
function requestPath(req: IncomingMessage & { originalUrl?: string }): string {
  const url = req.originalUrl ?? req.url ?? '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/**
 * pino-http settings shared by every HTTP host. Per request it writes ONE completion line
 * (method, url, status, time) and binds `requestId` to every line logged while the request
 * runs. Serializers are deliberately small: headers are not logged at all, which is both the
 * cheapest and the safest way to keep credentials out of the logs.
 */
export function pinoHttpOptions(root: Pino): Options<IncomingMessage, ServerResponse> {
  return {
    logger: root,
    // Fastify assigns the id first (see the api's adapter options) and middie copies it to
    // the raw request; this fallback keeps other hosts consistent with the same rule.
    genReqId: (req: RequestWithId, res) => {
      if (typeof req.id === 'string') return req.id;
      const id = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
      res.setHeader(REQUEST_ID_HEADER, id);
      return id;
    },
    quietReqLogger: true,
    customAttributeKeys: { reqId: 'requestId' },
    customLogLevel: (_req, res, err) => {
      if (err !== undefined || res.statusCode >= 500) return 'error';
      if (res.statusCode >= 400) return 'warn';
      return 'info';
    },
    customSuccessMessage: () => 'request completed',
    customErrorMessage: () => 'request failed',
    // The exception filter already wrote the one line with the stack; repeating pino-http's
    // synthetic "failed with status code 500" error would only add noise.
    customErrorObject: (_req, res, _err, value: Record<string, unknown>) => ({
      res: value.res,
      responseTime: value.responseTime,
      errorCode: responseErrorCode(res),
    }),
    customSuccessObject: (_req, res, value: Record<string, unknown>) => {
      const errorCode = responseErrorCode(res);
      return errorCode === undefined ? value : { ...value, errorCode };
    },
    autoLogging: {
      ignore: (req) => QUIET_PATHS.has(requestPath(req)),
    },
    serializers: {
      req: (req: { method?: string; url?: string }) => ({ method: req.method, url: req.url }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
    },
  };
}
