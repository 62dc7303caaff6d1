import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Inject } from '@nestjs/common';
import { isDomainError, type DomainError } from '@norm/core';
import { NORM_PINO, noteResponseError, REQUEST_ID_HEADER } from '@norm/platform';
import { type FastifyReply, type FastifyRequest } from 'fastify';
import { type Logger as Pino } from 'pino';
import { type ErrorBody } from './error-body';
import { type ApiErrorCode, codeForHttpStatus, ERROR_HTTP } from './error-mapping';

/** What a failure becomes on the wire, before the request id is added. */
export interface ErrorResponse {
  status: number;
  code: ApiErrorCode;
  message: string;
  details?: Record<string, unknown>;
  headers?: Record<string, string>;
  /** Details withheld from the caller; they go on the request's completion log line. */
  hiddenDetails?: Record<string, unknown>;
  /** A line of its own, with the stack: for 5xx only; 4xx are told by the completion line. */
  log?: { level: 'warn' | 'error'; msg: string; data: Record<string, unknown> };
}

const INTERNAL_MESSAGE = 'internal error; quote the requestId when reporting it';

/** Pure: maps anything thrown to the response and the log line it deserves. */
export function toErrorResponse(exception: unknown): ErrorResponse {
  if (isDomainError(exception)) return fromDomainError(exception);
  if (exception instanceof HttpException) return fromHttpException(exception);
  return {
    status: 500,
    code: 'InternalError',
    message: INTERNAL_MESSAGE,
    log: { level: 'error', msg: 'unhandled error', data: { err: exception } },
  };
}

function fromDomainError(error: DomainError): ErrorResponse {
  const { status, exposeDetails } = ERROR_HTTP[error.code];
  const hasDetails = Object.keys(error.details).length > 0;
  const response: ErrorResponse = {
    status,
    code: error.code,
    // A 500 from a known code is still our bug: its message is for operators.
    message: status === 500 ? INTERNAL_MESSAGE : error.message,
  };
  if (exposeDetails && hasDetails) response.details = { ...error.details };
  if (error.code === 'RateLimited') {
    const retryAfterS = error.details.retryAfterS;
    if (typeof retryAfterS === 'number')
      response.headers = { 'retry-after': String(Math.max(1, Math.ceil(retryAfterS))) };
  }
  // RFC 6750: a 401 names the scheme the client should use.
  if (error.code === 'Unauthenticated') response.headers = { 'www-authenticate': 'Bearer' };
  if (status >= 500) {
    response.log = {
      level: status === 500 ? 'error' : 'warn',
      msg: 'request failed',
      data: { code: error.code, err: error, details: error.details },
    };
  } else if (!exposeDetails && hasDetails) {
    // Hidden details (e.g. why a token was refused) still belong in the logs.
    response.hiddenDetails = { ...error.details };
  }
  return response;
}

function fromHttpException(exception: HttpException): ErrorResponse {
  const status = exception.getStatus();
  const code = codeForHttpStatus(status);
  if (status >= 500) {
    return {
      status,
      code,
      message: INTERNAL_MESSAGE,
      log: { level: 'error', msg: 'unhandled error', data: { err: exception } },
    };
  }
  // 4xx messages from Nest and Fastify describe the caller's request ("Cannot GET /x", "Body
  // cannot be empty...") and carry nothing of ours.
  return { status, code, message: exception.message };
}

/**
 * The API's single exception filter: every failure, whatever threw it, leaves as
 * `{ error: { code, message, details?, requestId } }` with the status from ERROR_HTTP.
 * Unknown errors become a bare 500 plus ONE log line with the stack and the request id.
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  constructor(@Inject(NORM_PINO) private readonly log: Pino) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    // Only HTTP is served today; other transports would need their own shape.
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const requestId = String(request.id);
    const response = toErrorResponse(exception);

    if (response.log !== undefined) {
      this.log[response.log.level](
        { ...response.log.data, requestId, method: request.method, url: request.url },
        response.log.msg,
      );
    }
    noteResponseError(reply.raw, { code: response.code, details: response.hiddenDetails });
    if (reply.sent) return;

    const body: ErrorBody = { error: { code: response.code, message: response.message, requestId } };
    if (response.details !== undefined) body.error.details = response.details;
    void reply
      .code(response.status)
      .headers({ ...response.headers, [REQUEST_ID_HEADER]: requestId })
      .type('application/json; charset=utf-8')
      .send(body);
  }
}
