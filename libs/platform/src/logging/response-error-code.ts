import { type ServerResponse } from 'node:http';

export interface ResponseError {
  code: string;
  /** Details kept from the caller (e.g. why a token was refused) but wanted in the logs. */
  details?: Readonly<Record<string, unknown>>;
}

/**
 * The error an HTTP host answered with, noted on the raw response so the request's ONE
 * completion line names it (`"errorCode":"Unauthenticated","errorDetails":{…}`) instead of
 * a second line per refused request. A WeakMap: nothing is added to Node's objects and
 * nothing outlives them.
 */
const errors = new WeakMap<ServerResponse, ResponseError>();

export function noteResponseError(res: ServerResponse, error: ResponseError): void {
  errors.set(res, error);
}

export function responseError(res: ServerResponse): ResponseError | undefined {
  return errors.get(res);
}
