import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeHttpRequest } from './http-request';

describe('nodeHttpRequest', () => {
  let server: Server;
  let base = '';
  const bodies: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        bodies.push(`${req.method} ${req.headers['content-length'] ?? '-'} ${body}`);
        if (req.url === '/huge') return void res.writeHead(200).end(Buffer.alloc(2 * 1024 * 1024, 'a'));
        // Headers at once, then silence: the timeout must cover the body too, not just the connect.
        if (req.url?.startsWith('/stall')) return void res.writeHead(200).write('partial');
        res.writeHead(201).end('créé');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('sends the body with its byte length and returns status and text', async () => {
    const res = await nodeHttpRequest(`${base}/ok`, {
      method: 'PUT',
      headers: {},
      body: 'é',
      timeoutMs: 2000,
    });
    expect(res).toEqual({ status: 201, body: 'créé' });
    expect(bodies.at(-1)).toBe('PUT 2 é');
  });

  it('refuses a runaway response', async () => {
    await expect(
      nodeHttpRequest(`${base}/huge`, { method: 'GET', headers: {}, timeoutMs: 5000 }),
    ).rejects.toThrow(`GET ${base}/huge: response larger than 1048576 bytes`);
  });

  it('times out a response that stalls after its headers, naming no query string', async () => {
    await expect(
      nodeHttpRequest(`${base}/stall?token=abc`, { method: 'GET', headers: {}, timeoutMs: 200 }),
    ).rejects.toThrow(new RegExp(`^GET ${base}/stall timed out after 200 ms$`));
  });

  it('names a refused connection by method and URL', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(
      nodeHttpRequest(`http://127.0.0.1:${port}/x`, { method: 'DELETE', headers: {}, timeoutMs: 1000 }),
    ).rejects.toThrow(`DELETE http://127.0.0.1:${port}/x: connect ECONNREFUSED`);
  });
});
