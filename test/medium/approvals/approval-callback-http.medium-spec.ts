import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { ApprovalService, callbackPayload, loadConfig, signPayload } from '@norm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../../apps/api/src/api-app';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { aCatalogue, aHostRow, type Catalogue } from '../vm-requests/builders';

interface Json {
  [k: string]: unknown;
}

const SECRET = 'cmdb-shared-secret';

/** A webhook step answered later over HTTP: the callback route, its HMAC and its idempotence. */
describe('webhook step callback over HTTP', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let app: NestFastifyApplication;
  let hook: Server;
  let alice: string;
  let cat: Catalogue;
  const received: Json[] = [];

  const inject = async (
    method: 'GET' | 'POST',
    url: string,
    payload?: Json,
    headers: Record<string, string> = {},
  ) => {
    const res = await app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) });
    return { status: res.statusCode, body: res.json<Json>() };
  };

  beforeAll(async () => {
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as Json);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"decision":"pending"}');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const stateDir = mkdtempSync(join(tmpdir(), 'norm-callback-'));
    const policyPath = join(stateDir, 'policy.yaml');
    writeFileSync(
      policyPath,
      `steps:\n  - name: cmdb\n    kind: webhook\n    url: http://127.0.0.1:${(hook.address() as AddressInfo).port}/\n    secretEnv: NORM_TEST_CMDB_SECRET\n`,
    );
    process.env.NORM_TEST_CMDB_SECRET = SECRET;
    const config = loadConfig({
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_STATE_DIR: stateDir,
      NORM_LOG_LEVEL: 'silent',
      NORM_APPROVAL_POLICY: policyPath,
      NORM_APPROVAL_CALLBACK_BASE_URL: 'https://norm.example/',
    });
    app = await createApiApp({ config });
    await app.init();
    const admin = await expectEventually(() => readFileSync(join(stateDir, 'admin-token'), 'utf8').trim());
    const auth = { authorization: `Bearer ${admin}` };
    const p = await inject(
      'POST',
      '/v1/principals',
      { kind: 'person', name: 'alice', roles: ['requester'] },
      auth,
    );
    alice = String(
      (await inject('POST', `/v1/principals/${String(p.body.id)}/tokens`, { name: 'cli' }, auth)).body.token,
    );
    await aHostRow(db.dataSource);
    cat = await aCatalogue(db.dataSource);
  });
  afterAll(async () => {
    await app?.close();
    await new Promise<void>((resolve) => hook.close(() => resolve()));
    delete process.env.NORM_TEST_CMDB_SECRET;
  });

  it('is asked by the job, then decides through the signed callback; a bad signature is 401', async () => {
    const created = await inject(
      'POST',
      '/v1/vm-requests',
      {
        name: 'web-7',
        vcpus: 1,
        memoryMb: 512,
        diskGb: 1,
        imageId: cat.image.id,
        networkId: cat.network.id,
        lifecycleClass: 'cattle',
      },
      { authorization: `Bearer ${alice}` },
    );
    expect(created.body.state).toBe('pending_approval');
    const id = String(created.body.id);
    // What the worker's ApprovalStepRun job does.
    expect(await app.get(ApprovalService).runExternalStep(id, 'cmdb')).toBe('recorded');
    expect(received.at(-1)).toMatchObject({
      requestId: id,
      step: 'cmdb',
      callbackUrl: `https://norm.example/v1/approvals/callbacks/${id}/cmdb`,
    });

    const url = `/v1/approvals/callbacks/${id}/cmdb`;
    const body = { decision: 'approve', reason: 'registered in CMDB' };
    const good = signPayload(SECRET, callbackPayload(id, 'cmdb', 'approve', 'registered in CMDB'));
    expect((await inject('POST', url, body, { 'x-norm-signature': 'sha256=' + '0'.repeat(64) })).status).toBe(
      401,
    );
    expect((await inject('POST', url, body)).status).toBe(401);
    const signedForReject = signPayload(SECRET, callbackPayload(id, 'cmdb', 'reject', 'registered in CMDB'));
    expect((await inject('POST', url, body, { 'x-norm-signature': signedForReject })).status).toBe(401);
    const ok = await inject('POST', url, body, { 'x-norm-signature': good });
    expect(ok.status).toBe(200);
    expect(ok.body.state).toBe('approved');
    expect((await inject('POST', url, body, { 'x-norm-signature': good })).status).toBe(200);
    expect((await inject('POST', url, { ...body, extra: 1 }, { 'x-norm-signature': good })).status).toBe(400);
  });
});
