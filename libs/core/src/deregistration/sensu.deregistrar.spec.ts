import { createServer } from 'node:http';
import { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type DeregistrationEvent } from './deregistrar.port';
import { buildDeregistrars, parseDeregistrationTargets } from './deregistration-targets';
import { type SensuDeregistrar } from './sensu.deregistrar';

const event: DeregistrationEvent = {
  event: 'instance.decommissioned',
  instanceId: 'i-1',
  name: 'web-1',
  domainName: 'norm-web-1',
  ip: null,
  mac: null,
  labels: {},
  at: '2026-01-01T00:00:00.000Z',
};

describe('SensuDeregistrar', () => {
  it('deletes the entity with the documented request; 404 is already absent; others fail', async () => {
    const entities = new Set(['web-1']);
    const seen: string[] = [];
    // A backend that checks Sensu Go's documented shape: method, path, `Authorization: Key …`.
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.headers.authorization !== 'Key k-123') return void res.writeHead(401).end();
      const m = /^\/api\/core\/v2\/namespaces\/prod\/entities\/([^/?]+)$/.exec(req.url ?? '');
      if (req.method === 'DELETE' && m) {
        const name = decodeURIComponent(m[1] ?? '');
        if (!entities.delete(name)) return void res.writeHead(404).end('{"message":"not found"}');
        return void res.writeHead(204).end();
      }
      if (req.method === 'GET' && req.url?.startsWith('/api/core/v2/namespaces/prod/entities')) {
        return void res.writeHead(200).end('[]');
      }
      res.writeHead(500).end('unexpected');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const [target] = buildDeregistrars(
        parseDeregistrationTargets(`sensu:main=http://127.0.0.1:${port}/prod`),
        {
          http: { post: () => Promise.reject(new Error('unused')) },
          commands: { run: () => Promise.reject(new Error('unused')) },
          clock: { now: () => new Date(), sleep: () => Promise.resolve() },
          webhookSecret: undefined,
          sensuApiKey: 'k-123',
          timeoutMs: 2000,
        },
      ) as [SensuDeregistrar];
      expect(target.name).toBe('sensu:main');
      expect(await target.testConnection()).toEqual({ ok: true, detail: 'HTTP 200' });
      expect(await target.deregister(event)).toEqual({ outcome: 'removed' });
      expect(await target.deregister(event)).toEqual({ outcome: 'absent' });
      expect(seen).toContain('DELETE /api/core/v2/namespaces/prod/entities/web-1');
      expect(target.describe()).toMatchObject({ kind: 'sensu', namespace: 'prod' });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('refuses to build without an API key', () => {
    expect(() =>
      buildDeregistrars(parseDeregistrationTargets('sensu:main=https://sensu:8080/default'), {
        http: { post: () => Promise.reject(new Error('unused')) },
        commands: { run: () => Promise.reject(new Error('unused')) },
        clock: { now: () => new Date(), sleep: () => Promise.resolve() },
        webhookSecret: undefined,
        timeoutMs: 1000,
      }),
    ).toThrow('NORM_DEREGISTRATION_SENSU_API_KEY');
  });
});
