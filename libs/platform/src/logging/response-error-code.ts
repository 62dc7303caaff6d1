import { type ServerResponse } from 'node:http';

/**
 * The error code an HTTP host answered with, noted on the raw response so the request's
 * completion line names it (`"errorCode":"NotFound"`) without a second log line per 4xx.
 * A WeakMap, so nothing is added to Node's response objects and nothing outlives them.
 */
const codes = new WeakMap<ServerResponse, string>();

export function noteResponseErrorCode(res: ServerResponse, code: string): void {
  codes.set(res, code);
}

export function responseErrorCode(res: ServerResponse): string | undefined {
  return codes.get(res);
}
