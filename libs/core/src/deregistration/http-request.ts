import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** PEM texts for a mutual-TLS client; `ca` replaces the system roots, pinning the server's CA. */
export interface TlsClientOptions {
  ca?: string;
  cert?: string;
  key?: string;
}

/** Outbound HTTP with any method, a body and client TLS (the approval steps' poster only POSTs). */
export type HttpRequest = (
  url: string,
  init: {
    method: string;
    headers: Record<string, string>;
    body?: string;
    tls?: TlsClientOptions;
    timeoutMs: number;
  },
) => Promise<{ status: number; body: string }>;

/** A target's answer is a status line or a small JSON document; more is a misbehaving server. */
const MAX_BODY = 1024 * 1024;

/**
 * node:http(s) rather than fetch: fetch cannot present a client certificate without undici's
 * dispatcher, and Puppet's CA and PuppetDB require one. The timeout covers the whole exchange,
 * connect to last byte, so a server that accepts and then stalls cannot hold a target.
 */
export const nodeHttpRequest: HttpRequest = (url, init) =>
  new Promise((resolve, reject) => {
    const u = new URL(url);
    // Named by origin and path only: no query string, no header, no body reaches an error.
    const what = `${init.method} ${u.origin}${u.pathname}`;
    const headers: Record<string, string> = { ...init.headers };
    if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
    const options = { method: init.method, headers };
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY) {
          req.destroy(new Error(`${what}: response larger than ${MAX_BODY} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    };
    const req =
      u.protocol === 'https:'
        ? httpsRequest(u, { ...options, ...init.tls }, onResponse)
        : httpRequest(u, options, onResponse);
    const timer = setTimeout(
      () => req.destroy(new Error(`${what} timed out after ${init.timeoutMs} ms`)),
      init.timeoutMs,
    );
    function fail(err: Error): void {
      clearTimeout(timer);
      reject(err.message.startsWith(what) ? err : new Error(`${what}: ${err.message}`));
    }
    req.on('error', fail);
    req.end(init.body);
  });
