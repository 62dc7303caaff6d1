import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { HeartbeatBuffer, loadConfig } from '@norm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../../apps/api/src/api-app';
import { REDIS_URL } from '../../harness/env';
import { expectEventually } from '../../harness/expect-eventually';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { insertInstance } from '../../medium/inventory/builders';

/** Debian's package, installed by scripts/bootstrap when missing. */
const ALERTMANAGER = '/usr/bin/prometheus-alertmanager';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe("Debian's prometheus-alertmanager delivering InstanceDown to Norm on loopback", () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let app: NestFastifyApplication;
  let am: ChildProcess | undefined;
  let amUrl: string;
  let instanceId: string;
  const name = `am-${Math.random().toString(36).slice(2, 8)}`;

  beforeAll(async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'norm-am-'));
    app = await createApiApp({
      config: loadConfig({
        DATABASE_URL: db.url,
        REDIS_URL,
        NORM_REDIS_PREFIX: prefix,
        NORM_STATE_DIR: stateDir,
        NORM_LOG_LEVEL: 'silent',
      }),
    });
    await app.listen(0, '127.0.0.1');
    const admin = await expectEventually(() => readFileSync(join(stateDir, 'admin-token'), 'utf8').trim());
    instanceId = await insertInstance(db.dataSource, { hostId: null, domainName: name });
    await db.dataSource.query(
      `UPDATE "instances" SET "name" = $2, "heartbeat_deadline_at" = now() + interval '1 hour' WHERE "id" = $1`,
      [instanceId, name],
    );
    const port = await freePort();
    amUrl = `http://127.0.0.1:${port}`;
    const cfg = join(stateDir, 'alertmanager.yml');
    writeFileSync(
      cfg,
      [
        'route:',
        '  receiver: norm',
        "  group_by: ['alertname', 'instance']",
        '  group_wait: 0s',
        '  group_interval: 1s',
        '  repeat_interval: 1h',
        'receivers:',
        '  - name: norm',
        '    webhook_configs:',
        `      - url: ${await app.getUrl()}/v1/integrations/alertmanager`,
        '        send_resolved: true',
        '        http_config:',
        '          authorization:',
        `            credentials: ${admin}`,
        '',
      ].join('\n'),
    );
    am = spawn(
      ALERTMANAGER,
      [
        `--config.file=${cfg}`,
        `--storage.path=${join(stateDir, 'am-data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--cluster.listen-address=',
      ],
      { stdio: 'ignore' },
    );
    await expectEventually(async () => {
      const res = await fetch(`${amUrl}/-/ready`);
      if (!res.ok) throw new Error(`alertmanager not ready: ${res.status}`);
    });
  });
  afterAll(async () => {
    am?.kill('SIGTERM');
    await app?.close();
  });

  const postAlert = async (endsAt?: Date): Promise<void> => {
    const res = await fetch(`${amUrl}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        {
          labels: { alertname: 'InstanceDown', instance: `${name}:9100`, job: 'node' },
          startsAt: new Date(Date.now() - 60_000).toISOString(),
          ...(endsAt ? { endsAt: endsAt.toISOString() } : {}),
        },
      ]),
    });
    expect(res.status).toBe(200);
  };

  const row = async () =>
    (
      await db.dataSource.query<Array<{ last_heartbeat_at: Date | null; heartbeat_deadline_at: Date }>>(
        `SELECT "last_heartbeat_at", "heartbeat_deadline_at" FROM "instances" WHERE "id" = $1`,
        [instanceId],
      )
    )[0]!;

  it('firing moves the deadline to now (a missed beat); resolved records a beat', async () => {
    await postAlert();
    await expectEventually(async () => {
      expect((await row()).heartbeat_deadline_at.getTime()).toBeLessThanOrEqual(Date.now());
    });
    expect((await row()).last_heartbeat_at).toBeNull();
    await postAlert(new Date(Date.now() - 1000));
    await expectEventually(async () => {
      await app.get(HeartbeatBuffer).flush();
      expect((await row()).last_heartbeat_at).not.toBeNull();
    });
  });
});
