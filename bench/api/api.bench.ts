/**
 * The request API under load, loopback only, bounded in time.
 *
 *   node -r ./scripts/register.js bench/api/api.bench.ts
 *
 * A child process serves, side by side on one CPU budget:
 *   norm – the real api app (createApiApp: request logging to /dev/null, the token guard with
 *          its Redis rate-limit script, zod DTOs, the exception filter) with
 *            POST /v1/vm-requests   auto-approved by the default steps (quota, naming): one
 *                                   transaction: the quota and name locks with admission's
 *                                   reads, the pipeline, then the request, its steps, its
 *                                   VmProvision outbox row and its audit in one statement (the
 *                                   job places it, so no placement here);
 *            GET  /v1/instances/:id one of 1,000 instance rows in turn, authorised against
 *                                   its owner (concurrent reads share a statement, see
 *                                   ReadCoalescer; distinct rows keep that honest);
 *   bare – the same two routes on bare Fastify, answering with a body of the same shape (the
 *          POST parses the same JSON body), no logging.
 * Every POST has a unique name and Idempotency-Key, and the quota is set out of reach, so
 * each one really creates and approves a request; the POSTs rotate over 50
 * requesters, since one requester's requests serialise on its quota lock by design. No worker runs: approval ends at
 * the outbox row, and what a worker does afterwards (placement included) is bench/provision's
 * subject. The approved requests stay in flight, so each owner's quota counts a growing set
 * of requests, which is the worst case for it (workers would move them to running).
 * autocannon drives each side in turn, interleaved rounds at 50 connections; the medians over
 * the rounds are compared. Goals: GET ≥ 0.20 and POST ≥ 0.10 of bare, p99 < 100 ms.
 */
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { type ActingContext, grantsForRoles, IdentityService, loadConfig } from '@norm/core';
import { HostRepository, PgVmRequestUnitOfWork } from '@norm/inventory';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { createLogDestination } from '@norm/platform';
import { createApiApp } from '../../apps/api/src/api-app';
import {
  createScratchDatabase,
  drive,
  interleave,
  type LoadResult,
  median,
  pinServerAndLoad,
  startTimeBudget,
} from '../lib/bench-kit';

const ROUNDS = 5;
const SECONDS = 3;
const CONNECTIONS = 50;
const INSTANCES = 1_000;
const GOAL_GET = 0.2;
const GOAL_POST = 0.1;
const GOAL_P99_MS = 100;
const TIME_BUDGET_MS = 240_000;

interface Ready {
  norm: string;
  bare: string;
  token: string;
  /** One per connection: a requester's own requests serialise on its quota lock, by design. */
  requesterTokens: string[];
  /** INSTANCES running instances of the token's owner; the GETs go round them. */
  instanceIds: string[];
  imageId: string;
  networkId: string;
}

const ADMIN: ActingContext = {
  subject: {
    kind: 'principal',
    principal: {
      id: '00000000-0000-4000-8000-00000000a001',
      kind: 'service',
      name: 'bench-admin',
      roles: ['admin'],
      groups: [],
      createdAt: new Date(0),
    },
    tokenId: 'bench',
    grants: grantsForRoles(['admin']),
  },
  requestId: null,
};

/** One host large enough that placement never runs out during the run. */
async function seed(ds: DataSource): Promise<{ imageId: string; networkId: string }> {
  await new HostRepository(ds.manager).create(
    {
      name: 'bench-host',
      address: '127.0.0.1',
      port: 22,
      sshUser: 'norm',
      sudo: false,
      hostKeyFingerprint: 'SHA256:benchbenchbenchbenchbenchbenchbenchbenchben',
      labels: {},
      limits: {},
    },
    {
      totalMemoryMb: 1_000_000_000,
      freeMemoryMb: 1_000_000_000,
      nrCpus: 100_000,
      xenVersion: '4.17.5',
      storageTotalMb: 1_000_000_000,
      storageFreeMb: 1_000_000_000,
      volumeGroups: [{ name: 'vg0', sizeMb: 1_000_000_000, freeMb: 1_000_000_000 }],
      domains: [],
    },
    new Date(),
  );
  return new PgVmRequestUnitOfWork(ds).run(async (tx) => {
    const image = await tx.images.create({
      name: 'bench',
      osLabel: 'bench',
      boot: { method: 'pygrub' },
      defaultDiskGb: 1,
      goldenVolumes: [{ vg: 'vg0', lv: 'golden-tiny' }],
    });
    const network = await tx.networks.create({
      name: 'bench',
      bridge: 'xenbr0',
      cidr: '10.200.0.0/16',
      gateway: '10.200.0.1',
      rangeStart: '10.200.0.10',
      rangeEnd: '10.200.255.250',
    });
    return { imageId: image.id, networkId: network.id };
  });
}

/** Child: both servers in one process, so they share one event loop and one CPU. */
async function serve(): Promise<void> {
  const config = loadConfig(process.env);
  const norm = await createApiApp({
    config,
    logDestination: createLogDestination('/dev/null'),
  });
  await norm.listen(0, '127.0.0.1');
  const ds = norm.get(DataSource);
  const { imageId, networkId } = await seed(ds);
  const identity = norm.get(IdentityService);
  const requester = await identity.createPrincipal(ADMIN, {
    kind: 'person',
    name: 'bench-requester',
    roles: ['requester'],
    groups: [],
  });
  const { token } = await identity.createToken(ADMIN, requester.id, { name: 'bench' });
  const requesterTokens: string[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const p = await identity.createPrincipal(ADMIN, {
      kind: 'person',
      name: `bench-requester-${i}`,
      roles: ['requester'],
      groups: [],
    });
    requesterTokens.push((await identity.createToken(ADMIN, p.id, { name: 'bench' })).token);
  }
  const url = await norm.getUrl();
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

  // A real request and a real instance row, so the bare side answers with bodies of the same shape.
  const created = await fetch(`${url}/v1/vm-requests`, {
    method: 'POST',
    headers,
    body: JSON.stringify(vmRequestBody('seed', imageId, networkId)),
  });
  if (created.status !== 201)
    throw new Error(`seed request answered ${created.status}: ${await created.text()}`);
  const requestView: unknown = await created.json();
  const [row] = await ds.query<Array<{ id: string }>>(
    `INSERT INTO "instances" ("vm_request_id", "name", "owner_id", "host_id", "domain_name", "lifecycle_class", "state", "ip", "mac", "domid")
     SELECT r."id", r."name", r."owner_id", r."host_id", r."name", 'cattle', 'running', '10.200.0.10', '00:16:3e:00:00:01', 7
       FROM "vm_requests" r WHERE r."name" = 'seed' RETURNING "id"`,
  );
  const instanceId = row!.id;
  // More instances like it, so the reads spread over many rows as a fleet's clients' would:
  // concurrent reads of one row would share their statement's single result row.
  const more = await ds.query<Array<{ id: string }>>(
    `WITH "requests" AS (
       INSERT INTO "vm_requests"
       SELECT (jsonb_populate_record(NULL::"vm_requests", to_jsonb(r) || jsonb_build_object(
                 'id', gen_random_uuid(), 'name', 'seed-' || g, 'idempotency_key', NULL))).*
         FROM "vm_requests" r, generate_series(1, $1::int - 1) AS g
        WHERE r."name" = 'seed'
       RETURNING "id", "name", "owner_id", "host_id")
     INSERT INTO "instances" ("vm_request_id", "name", "owner_id", "host_id", "domain_name", "lifecycle_class", "state", "ip", "mac", "domid")
     SELECT r."id", r."name", r."owner_id", r."host_id", r."name", 'cattle', 'running', '10.200.0.10', '00:16:3e:00:00:01', 7
       FROM "requests" r RETURNING "id"`,
    [INSTANCES],
  );
  const instanceIds = [instanceId, ...more.map((m) => m.id)];
  const got = await fetch(`${url}/v1/instances/${instanceId}`, { headers });
  if (got.status !== 200) throw new Error(`instance read answered ${got.status}: ${await got.text()}`);
  const instanceView: unknown = await got.json();

  const bare = new FastifyAdapter().getInstance();
  bare.get<{ Params: { id: string } }>('/v1/instances/:id', () => instanceView);
  bare.post<{ Body: { name?: string } }>('/v1/vm-requests', (request, reply) => {
    void reply.code(201);
    return { ...(requestView as object), name: request.body.name };
  });
  await bare.listen({ port: 0, host: '127.0.0.1' });
  const address = bare.server.address();
  if (address === null || typeof address === 'string') throw new Error('bare server has no port');
  const ready: Ready = {
    norm: url,
    bare: `http://127.0.0.1:${address.port}`,
    token,
    requesterTokens,
    instanceIds,
    imageId,
    networkId,
  };
  process.send?.(ready);
  process.on('disconnect', () => {
    void Promise.all([norm.close(), bare.close()]).then(() => process.exit(0));
  });
}

function vmRequestBody(name: string, imageId: string, networkId: string): Record<string, unknown> {
  return {
    name,
    vcpus: 1,
    memoryMb: 256,
    diskGb: 1,
    imageId,
    networkId,
    lifecycleClass: 'cattle',
    labels: { team: 'bench' },
  };
}

async function main(): Promise<void> {
  startTimeBudget(TIME_BUDGET_MS);
  const db = await createScratchDatabase(loadConfig(process.env).databaseUrl, 'api');
  const child = fork(__filename, ['--serve'], {
    execArgv: ['-r', './scripts/register.js'],
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      NORM_REDIS_PREFIX: `norm-bench-api-${process.pid}`,
      NORM_STATE_DIR: mkdtempSync(join(tmpdir(), 'norm-bench-api-')),
      NORM_LOG_LEVEL: 'info',
      // The bench measures the routes, not the refusals.
      NORM_RATE_LIMIT_PER_TOKEN: '1000000000',
      NORM_RATE_LIMIT_PER_IP: '1000000000',
      NORM_QUOTA_PER_PRINCIPAL: 'instances=100000000,vcpus=100000000,memoryMb=1000000000',
    },
  });
  try {
    const ready = await new Promise<Ready>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Ready));
      child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
    });
    const pinning = pinServerAndLoad(child.pid!);
    const headers = { authorization: `Bearer ${ready.token}`, 'content-type': 'application/json' };
    // Names and keys unique across every round and both sides; a letter first for the naming policy.
    let g = 0;
    const nextGet = (): { path: string } => ({
      path: `/v1/instances/${ready.instanceIds[g++ % ready.instanceIds.length]!}`,
    });
    let n = 0;
    const nextPost = (): { body: string; headers: Record<string, string> } => {
      const name = `b${(n++).toString(36)}`;
      return {
        body: JSON.stringify(vmRequestBody(name, ready.imageId, ready.networkId)),
        headers: {
          authorization: `Bearer ${ready.requesterTokens[n % ready.requesterTokens.length]!}`,
          'idempotency-key': `bench-${name}`,
        },
      };
    };
    const run = async (route: 'get' | 'post', side: 'norm' | 'bare'): Promise<LoadResult> =>
      route === 'get'
        ? drive(`${ready[side]}/v1/instances/${ready.instanceIds[0]!}`, {
            connections: CONNECTIONS,
            seconds: SECONDS,
            headers,
            perRequest: nextGet,
          })
        : drive(`${ready[side]}/v1/vm-requests`, {
            connections: CONNECTIONS,
            seconds: SECONDS,
            headers,
            method: 'POST',
            perRequest: nextPost,
          });
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    // autocannon stops sending at the end of a round, but the api still owes the POSTs in flight;
    // the next round starts once they have landed, so it does not measure their backlog.
    const drained = async (): Promise<void> => {
      let last = -1;
      for (let i = 0; i < 120; i++) {
        const { rows } = await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM "vm_requests"`);
        if (rows[0]?.n === last) return;
        last = rows[0]?.n ?? -1;
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    const results = await interleave(
      ['get:norm', 'get:bare', 'post:norm', 'post:bare'] as const,
      ROUNDS,
      async (key) => {
        const [route, side] = key.split(':') as ['get' | 'post', 'norm' | 'bare'];
        const result = await run(route, side);
        if (key === 'post:norm') await drained();
        return result;
      },
    );
    await pg.end();
    const failures = Object.values(results)
      .flat()
      .reduce((sum, r) => sum + r.failures, 0);
    const rounds = (v: LoadResult[]): string => v.map((x) => x.rps.toFixed(0)).join(' ');
    const summary = (key: keyof typeof results): { rps: number; p99: number } => ({
      rps: median(results[key].map((r) => r.rps)),
      p99: median(results[key].map((r) => r.p99)),
    });
    console.log(
      `${CONNECTIONS} connections, ${ROUNDS}×${SECONDS}s interleaved rounds, no worker running, ${pinning}`,
    );
    for (const [route, label, goal] of [
      ['get', `GET /v1/instances/:id`, GOAL_GET],
      ['post', `POST /v1/vm-requests (auto-approved, outbox)`, GOAL_POST],
    ] as const) {
      const norm = summary(`${route}:norm`);
      const bare = summary(`${route}:bare`);
      const ratio = norm.rps / bare.rps;
      const ok = ratio >= goal && norm.p99 < GOAL_P99_MS;
      console.log(`${label}`);
      console.log(
        `  norm req/s median ${norm.rps.toFixed(0)} (rounds ${rounds(results[`${route}:norm`])}), p99 ${norm.p99} ms`,
      );
      console.log(
        `  bare req/s median ${bare.rps.toFixed(0)} (rounds ${rounds(results[`${route}:bare`])}), p99 ${bare.p99} ms`,
      );
      console.log(
        `  ratio ${ratio.toFixed(3)} (goal ≥ ${goal}), p99 ${norm.p99} ms (goal < ${GOAL_P99_MS}) ${ok ? 'OK' : 'MISSED'}`,
      );
    }
    console.log(`requests created: ${n} (norm and bare), non-2xx or failed requests: ${failures}`);
    if (failures > 0) process.exitCode = 1;
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      if (child.connected) child.disconnect();
      await exited;
    }
    await db.drop();
  }
}

if (process.argv.includes('--serve')) void serve();
else void main();
