import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { processCommandRunner, type WebhookPoster } from '../approvals/step-runners';
import { type ActingContext } from '../identity/identity.service';
import { grantsForRoles, type Role } from '../identity/permissions';
import { type Clock, silentLogger } from '../ports';
import { CommandDeregistrar } from './command.deregistrar';
import { type Deregistrar, type DeregistrationEvent } from './deregistrar.port';
import { type DeregistrationRecord, type DeregistrationStore } from './deregistration.port';
import { DeregistrationService } from './deregistration.service';
import { WebhookDeregistrar } from './webhook.deregistrar';

const clock: Clock & { t: number } = {
  t: Date.parse('2026-01-01T00:00:00Z'),
  now() {
    return new Date(this.t);
  },
  sleep: () => Promise.resolve(),
};

function aPrincipalContext(roles: Role[]): ActingContext {
  return {
    subject: {
      kind: 'principal',
      principal: { id: 'p-1', kind: 'person', name: 'pat', roles, groups: [], createdAt: new Date(0) },
      tokenId: 't-1',
      grants: grantsForRoles(roles),
    },
    requestId: null,
  };
}

const event: DeregistrationEvent = {
  event: 'instance.decommissioned',
  instanceId: 'i-1',
  name: 'web-1',
  domainName: 'norm-web-1',
  ip: '10.0.0.5',
  mac: '00:16:3e:00:00:05',
  labels: {},
  at: '2026-01-01T00:00:00.000Z',
};

class MemoryStore implements DeregistrationStore {
  rows: DeregistrationRecord[] = [];
  state = 'decommissioning';
  private seq = 0;
  ensure(instanceId: string, targets: readonly string[], retryFrom: Date): Promise<void> {
    for (const target of targets) {
      if (this.rows.some((r) => r.instanceId === instanceId && r.target === target)) continue;
      this.rows.push({
        id: `d-${++this.seq}`,
        instanceId,
        target,
        status: 'pending',
        attempts: 0,
        lastError: null,
        nextAttemptAt: retryFrom,
        createdAt: clock.now(),
        updatedAt: clock.now(),
      });
    }
    return Promise.resolve();
  }
  forInstance(id: string) {
    return Promise.resolve(this.rows.filter((r) => r.instanceId === id).map((r) => ({ ...r })));
  }
  due(now: Date) {
    return Promise.resolve(
      this.rows
        .filter((r) => r.status !== 'done' && (!r.nextAttemptAt || r.nextAttemptAt <= now))
        .map((r) => ({ ...r })),
    );
  }
  record(id: string, p: Partial<DeregistrationRecord>) {
    Object.assign(
      this.rows.find((r) => r.id === id)!,
      p,
    );
    return Promise.resolve();
  }
  list() {
    return Promise.resolve(this.rows);
  }
  get(id: string) {
    return Promise.resolve(this.rows.find((r) => r.id === id) ?? null);
  }
  eventFor() {
    return Promise.resolve(event);
  }
  completeInstance() {
    if (this.state !== 'decommissioning' || this.rows.some((r) => r.status !== 'done'))
      return Promise.resolve(false);
    this.state = 'decommissioned';
    return Promise.resolve(true);
  }
}

function target(
  name: string,
  behave: () => Promise<{ outcome: 'removed' | 'absent' }>,
): Deregistrar & { calls: number } {
  const t = {
    name,
    calls: 0,
    deregister: () => {
      t.calls++;
      return behave();
    },
    testConnection: () => Promise.resolve({ ok: true, detail: '' }),
    describe: () => ({ name }),
  };
  return t;
}

describe('DeregistrationService', () => {
  it('a target that is down blocks no other, keeps its obligation, and finishes on a later retry', async () => {
    const store = new MemoryStore();
    let up = false;
    const good = target('webhook:cmdb', () => Promise.resolve({ outcome: 'removed' }));
    const flaky = target('command:dns', () =>
      up ? Promise.resolve({ outcome: 'absent' }) : Promise.reject(new Error('connection refused')),
    );
    const audit: string[] = [];
    const svc = new DeregistrationService(
      {
        store,
        targets: [good, flaky],
        clock,
        log: silentLogger,
        audit: (e) => {
          audit.push(e.action);
          return Promise.resolve();
        },
      },
      { baseBackoffMs: 1000, maxBackoffMs: 4000 },
    );
    expect(await svc.begin(event)).toBe(false);
    expect(store.rows.map((r) => [r.target, r.status])).toEqual([
      ['webhook:cmdb', 'done'],
      ['command:dns', 'failed'],
    ]);
    expect(store.rows[1]!.nextAttemptAt!.getTime() - clock.t).toBe(1000);
    // Not due yet: nothing retried.
    expect(await svc.runDue()).toEqual({ attempted: 0, done: 0 });
    clock.t += 1000;
    await svc.runDue();
    expect(store.rows[1]!.nextAttemptAt!.getTime() - clock.t).toBe(2000); // backoff doubles
    clock.t += 10_000;
    up = true;
    expect(await svc.runDue()).toEqual({ attempted: 1, done: 1 });
    expect(store.state).toBe('decommissioned');
    expect(good.calls).toBe(1); // a second decommission run would not repeat a done target
    expect(await svc.begin(event)).toBe(true);
    expect(good.calls).toBe(1);
    expect(audit.filter((a) => a === 'deregistration.failed')).toHaveLength(2);
  });

  it('the retry loop leaves rows alone while the decommission calls them, and takes them over one backoff later', async () => {
    const store = new MemoryStore();
    let release!: () => void;
    const slow = target(
      'webhook:slow',
      () => new Promise((resolve) => (release = () => resolve({ outcome: 'removed' }))),
    );
    const svc = new DeregistrationService(
      { store, targets: [slow], clock, log: silentLogger, audit: () => Promise.resolve() },
      { baseBackoffMs: 1000, maxBackoffMs: 4000 },
    );
    const begun = svc.begin(event);
    await new Promise((r) => setImmediate(r));
    expect(slow.calls).toBe(1);
    // A loop pass while the first call is in flight calls no one a second time.
    expect(await svc.runDue()).toEqual({ attempted: 0, done: 0 });
    expect(slow.calls).toBe(1);
    release();
    expect(await begun).toBe(true);
    // A worker that died mid-call leaves a pending row: the loop takes it once the backoff ends.
    const orphan = new MemoryStore();
    const t = target('webhook:x', () => Promise.resolve({ outcome: 'removed' }));
    const loop = new DeregistrationService(
      { store: orphan, targets: [t], clock, log: silentLogger, audit: () => Promise.resolve() },
      { baseBackoffMs: 1000, maxBackoffMs: 4000 },
    );
    await orphan.ensure(event.instanceId, ['webhook:x'], new Date(clock.t + 1000));
    expect(await loop.runDue()).toEqual({ attempted: 0, done: 0 });
    clock.t += 1000;
    expect(await loop.runDue()).toEqual({ attempted: 1, done: 1 });
    expect(orphan.state).toBe('decommissioned');
  });

  it('operator retry runs a failed row at once', async () => {
    const store = new MemoryStore();
    let up = false;
    const t = target('webhook:x', () =>
      up ? Promise.resolve({ outcome: 'removed' }) : Promise.reject(new Error('503')),
    );
    const svc = new DeregistrationService({
      store,
      targets: [t],
      clock,
      log: silentLogger,
      audit: () => Promise.resolve(),
    });
    await svc.begin(event);
    up = true;
    const row = await svc.retry(aPrincipalContext(['operator']), store.rows[0]!.id);
    expect(row.status).toBe('done');
    expect(store.state).toBe('decommissioned');
    await expect(svc.retry(aPrincipalContext(['viewer']), store.rows[0]!.id)).rejects.toMatchObject({
      code: 'Forbidden',
    });
  });
});

describe('WebhookDeregistrar', () => {
  it('posts the event signed over timestamp and body; 404/410 are already absent', async () => {
    const seen: Array<{ body: string; headers: Record<string, string> }> = [];
    let status = 200;
    const http: WebhookPoster = {
      post: (_url, body, headers) => {
        seen.push({ body, headers: { ...headers } });
        return Promise.resolve({ status, body: '' });
      },
    };
    const hook = new WebhookDeregistrar(
      { name: 'cmdb', url: 'https://cmdb.example/hooks/norm?k=1', secret: 's3cret', timeoutMs: 1000 },
      http,
      clock,
    );
    expect(await hook.deregister(event)).toEqual({ outcome: 'removed' });
    const { body, headers } = seen[0]!;
    const t = Math.floor(clock.t / 1000);
    const mac = createHmac('sha256', 's3cret').update(`${t}.${body}`).digest('hex');
    expect(headers['x-norm-signature']).toBe(`t=${t},v1=${mac}`);
    expect(JSON.parse(body)).toEqual(event);
    status = 410;
    expect(await hook.deregister(event)).toEqual({ outcome: 'absent' });
    status = 500;
    await expect(hook.deregister(event)).rejects.toThrow('webhook answered 500');
    expect(hook.describe()).toEqual({
      kind: 'webhook',
      name: 'webhook:cmdb',
      url: 'https://cmdb.example/hooks/norm',
      signed: 'hmac-sha256',
    });
  });
});

describe('CommandDeregistrar', () => {
  it('gives the event on STDIN; exit 0 removed, exit 3 absent, other exits fail', async () => {
    const run = (script: string) =>
      new CommandDeregistrar(
        { name: 'x', argv: ['/bin/sh', '-c', script], timeoutMs: 5000 },
        processCommandRunner,
      );
    expect(await run('grep -q "\\"instanceId\\":\\"i-1\\""').deregister(event)).toEqual({
      outcome: 'removed',
    });
    expect(await run('cat >/dev/null; exit 3').deregister(event)).toEqual({ outcome: 'absent' });
    await expect(run('cat >/dev/null; echo nope >&2; exit 1').deregister(event)).rejects.toThrow(
      'exited 1: nope',
    );
  });
});
