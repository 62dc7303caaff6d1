import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type SimulatedFleet, type SimulatedFleetMode, startSimulatedFleet } from '@norm/xen/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../../harness/env';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';
import { type ApiProcess, call, freePort, startApi } from '../identity/api-process';

const MODES: SimulatedFleetMode[] = ['inprocess', 'openssh'];

/**
 * Trust on first use, shown to the operator: the api reads the key a host offers, the operator
 * compares it out of band and pins it at registration. Against both simulator modes, through
 * the real api process.
 */
describe.each(MODES)('POST /v1/hosts/actions/scan-host-key over %s', (mode) => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();
  let fleet: SimulatedFleet;
  let api: ApiProcess;
  let admin: string;

  beforeAll(async () => {
    fleet = await startSimulatedFleet({ count: 1, mode, namePrefix: `scan-${mode}-` });
    api = await startApi({
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_SSH_KEY_PATH: fleet.clientKey.privateKeyPath,
    });
    admin = readFileSync(join(api.stateDir, 'admin-token'), 'utf8').trim();
  }, 60_000);

  afterAll(async () => {
    await api?.stop();
    await fleet?.stop();
  });

  it('reads the fingerprint the host offers, which then pins a registration', async () => {
    const h = fleet.hosts[0]!;
    const scan = await call(api.url, 'POST', '/v1/hosts/actions/scan-host-key', admin, {
      address: h.address,
      port: h.port,
    });
    expect(scan.status).toBe(200);
    const body = scan.body as { fingerprint: string; confirm: string };
    expect(body.fingerprint).toBe(h.fingerprint);
    expect(body.confirm).toContain('ssh-keygen -lf');
    // Nothing was stored by the scan.
    expect((await call(api.url, 'GET', '/v1/hosts', admin)).body).toEqual([]);

    const registered = await call(api.url, 'POST', '/v1/hosts', admin, {
      name: h.name,
      address: h.address,
      port: h.port,
      sshUser: h.user,
      sudo: false,
      hostKeyFingerprint: body.fingerprint,
    });
    expect(registered.status).toBe(201);
  });

  it('answers 503 for a port nothing listens on, and 400 naming a bad field', async () => {
    const closed = await call(api.url, 'POST', '/v1/hosts/actions/scan-host-key', admin, {
      address: '127.0.0.1',
      port: await freePort(),
    });
    expect(closed.status).toBe(503);
    const bad = await call(api.url, 'POST', '/v1/hosts/actions/scan-host-key', admin, {
      address: 'host;rm -rf /',
      port: 22,
      extra: 1,
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('address');
  });
});
