import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DeregistrationService, loadConfig } from '@norm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../../apps/api/src/api-app';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { insertInstance } from '../inventory/builders';

const SECRET = 'medium-test-webhook-secret';

describe('deregistration targets, status rows and retry over HTTP', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let app: NestFastifyApplication;
  let admin: string;
  let receiver: Server;
  let answer = 503;
  const received: Array<{ body: string; valid: boolean }> = [];
  let stdinFile: string;

  beforeAll(async () => {
    // A CMDB that checks the documented signature: t=<unix>,v1=hex(hmac_sha256(secret, t + "." + body)).
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const sig = String(req.headers['x-norm-signature'] ?? '');
        const [, t, v1] = /^t=(\d+),v1=([0-9a-f]+)$/.exec(sig) ?? [];
        const valid = !!t && createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex') === v1;
        received.push({ body, valid });
        res.writeHead(valid ? answer : 401).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    const stateDir = mkdtempSync(join(tmpdir(), 'norm-dereg-'));
    stdinFile = join(stateDir, 'stdin.json');
    const config = loadConfig({
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_STATE_DIR: stateDir,
      NORM_LOG_LEVEL: 'silent',
      NORM_DEREGISTRATION_TARGETS: `webhook:cmdb=http://127.0.0.1:${port}/hooks/norm;command:script=/bin/sh -c cat>${stdinFile}`,
      NORM_DEREGISTRATION_WEBHOOK_SECRET: SECRET,
    });
    app = await createApiApp({ config });
    await app.init();
    admin = await expectEventually(() => readFileSync(join(stateDir, 'admin-token'), 'utf8').trim());
  });
  afterAll(async () => {
    await app?.close();
    await new Promise((r) => receiver?.close(r));
  });

  const call = async (method: 'GET' | 'POST', url: string) => {
    const res = await app.inject({ method, url, headers: { authorization: `Bearer ${admin}` } });
    return { status: res.statusCode, body: res.json<unknown>() };
  };

  it('a target that is down stays failed and visible, blocks no other, and a retry finishes the instance', async () => {
    const id = await insertInstance(db.dataSource, {
      hostId: null,
      domainName: 'gone-1',
      state: 'decommissioning',
    });
    const service = app.get(DeregistrationService);
    const clean = await service.begin({
      event: 'instance.decommissioned',
      instanceId: id,
      name: 'gone-1',
      domainName: 'gone-1',
      ip: '10.1.2.3',
      mac: null,
      labels: {},
      at: new Date().toISOString(),
    });
    expect(clean).toBe(false);
    expect(received).toHaveLength(1);
    expect(received[0]!.valid).toBe(true);
    expect(JSON.parse(readFileSync(stdinFile, 'utf8'))).toMatchObject({ instanceId: id, ip: '10.1.2.3' });

    const failed = await call('GET', '/v1/deregistrations?status=failed');
    expect(failed.status).toBe(200);
    const rows = failed.body as Array<{ id: string; target: string; instanceId: string; lastError: string }>;
    expect(rows.map((r) => [r.instanceId, r.target])).toEqual([[id, 'webhook:cmdb']]);
    expect(rows[0]!.lastError).toContain('503');
    const done = (await call('GET', `/v1/deregistrations?status=done&instance=${id}`)).body as Array<{
      target: string;
    }>;
    expect(done.map((r) => r.target)).toEqual(['command:script']);
    const [before] = await db.dataSource.query<Array<{ state: string }>>(
      `SELECT "state" FROM "instances" WHERE "id" = $1`,
      [id],
    );
    expect(before!.state).toBe('decommissioning');

    answer = 410; // the CMDB already forgot it: absent is success
    const retried = await call('POST', `/v1/deregistrations/${rows[0]!.id}/actions/retry`);
    expect(retried).toMatchObject({ status: 200, body: { status: 'done', attempts: 2 } });
    const [after] = await db.dataSource.query<Array<{ state: string }>>(
      `SELECT "state" FROM "instances" WHERE "id" = $1`,
      [id],
    );
    expect(after!.state).toBe('decommissioned');
    expect((await call('GET', '/v1/deregistrations?status=failed')).body).toEqual([]);
  });

  it('an unknown row answers 404; a bad status 400', async () => {
    expect(
      (await call('POST', '/v1/deregistrations/00000000-0000-4000-8000-000000000000/actions/retry')).status,
    ).toBe(404);
    expect((await call('GET', '/v1/deregistrations?status=lost')).status).toBe(400);
  });
});
