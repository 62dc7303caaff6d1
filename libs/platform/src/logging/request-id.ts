import { randomUUID } from 'node:crypto';

export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * Short, printable and free of separators that log viewers or shells treat specially, so an
 * id chosen by a caller (a proxy, a CI job correlating its own logs) cannot forge log lines,
 * inject header values or grow without bound.
 */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's `x-request-id` when it is a safe token, else a fresh UUID. */
export function requestIdFrom(header: string | readonly string[] | undefined): string {
  // A repeated header is ambiguous; trusting either copy would let one hop override another.
  if (typeof header === 'string' && SAFE_REQUEST_ID.test(header)) return header;
  return randomUUID();
}
