import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DomainError, type HostEndpoint, isDomainError } from '@norm/core';
import { readHostKeyFingerprint, sshOptions, SshPool, type SshTransportOptions } from '@norm/xen';
import { type SimulatedFleet, type SimulatedFleetMode, startSimulatedFleet } from '@norm/xen/testing';

/**
 * The SSH transport against both simulator modes: the in-process ssh2 server and a real
 * OpenSSH sshd. Faults are injected through the simulator; every assertion that "nothing
 * ran" reads the simulator's own command log.
 */
// Both modes always: a machine without sshd fails loudly here rather than skipping the interop proof.
const MODES: SimulatedFleetMode[] = ['inprocess', 'openssh'];

describe.each(MODES)('SSH transport over %s', (mode) => {
  let fleet: SimulatedFleet;
  let pool: SshPool;

  beforeAll(async () => {
    fleet = await startSimulatedFleet({ count: 1, mode });
  });
  afterAll(async () => {
    await fleet.stop();
  });
  afterEach(async () => {
    await pool.close();
    fleet.hosts[0]!.sim.faults.reset();
  });

  function open(overrides: Partial<SshTransportOptions> = {}): {
    endpoint: HostEndpoint;
    pool: SshPool;
  } {
    const h = fleet.hosts[0]!;
    pool = new SshPool(
      sshOptions({
        privateKey: h.privateKey,
        backoff: { baseMs: 50, maxMs: 200 },
        connectTimeoutMs: 2_000,
        ...overrides,
      }),
    );
    return {
      pool,
      endpoint: {
        name: h.name,
        address: h.address,
        port: h.port,
        user: h.user,
        hostKeyFingerprint: h.fingerprint,
        sudo: true,
      },
    };
  }

  it('delivers hostile strings as single, intact arguments', async () => {
    const { pool: p, endpoint } = open();
    const hostile = [
      "it's",
      'a"b',
      'x; rm -rf /',
      '$(id)',
      '`id`',
      'line1\nline2',
      '*',
      '/etc/*',
      '-rf',
      '--help',
      ' leading and trailing ',
      '',
      '\\',
      '|&<>',
      '${HOME}',
      '~',
      '#comment',
      'tab\there',
    ];
    const result = await p.forHost(endpoint).exec(['norm-argv', ...hostile]);
    expect(JSON.parse(result.stdout)).toEqual(hostile);
    expect(fleet.hosts[0]!.sim.commands(['norm-argv']).at(-1)?.command).toEqual(['norm-argv', ...hostile]);
  });

  it('multiplexes many commands over one connection', async () => {
    const { pool: p, endpoint } = open();
    const results = await Promise.all(
      Array.from({ length: 40 }, () => p.forHost(endpoint).exec(['xl', 'list'])),
    );
    expect(results.every((r) => r.stdout.includes('Domain-0'))).toBe(true);
  });

  it('latency: commands still succeed, and a deadline shorter than the latency fails at the deadline', async () => {
    const { pool: p, endpoint } = open();
    const sim = fleet.hosts[0]!.sim;
    sim.faults.setLatency(150);
    const ok = await p.forHost(endpoint).exec(['xl', 'list']);
    expect(ok.durationMs).toBeGreaterThanOrEqual(140);
    const seen = sim.commands(['xl', 'list']).length;
    const t0 = performance.now();
    const err = await failure(p.forHost(endpoint).exec(['xl', 'list'], { timeoutMs: 60 }));
    expect(err.code).toBe('CommandTimeout');
    expect(performance.now() - t0).toBeLessThan(500);
    // The abandoned command may still reach the host after its caller gave up (under sshd
    // the forwarder needs a moment to start); wait for it, so it cannot take a fault that
    // a later test injects.
    await expectEventually(async () => Promise.resolve(sim.commands(['xl', 'list']).length > seen));
  });

  it('next-N failures surface as typed errors, then commands succeed again', async () => {
    const { pool: p, endpoint } = open();
    const sim = fleet.hosts[0]!.sim;
    sim.faults.failNext(2, { stderr: 'libxl: error: simulated\n', exitCode: 1 });
    const c = p.forHost(endpoint);
    for (let i = 0; i < 2; i += 1) {
      const err = await failure(c.exec(['xl', 'list']));
      expect(err.details).toMatchObject({ host: endpoint.name, exitCode: 1 });
      expect(String(err.details.stderr)).toContain('simulated');
    }
    expect((await c.exec(['xl', 'list'])).exitCode).toBe(0);
  });

  it('a hanging command fails with CommandTimeout at its deadline and the connection stays usable', async () => {
    const { pool: p, endpoint } = open();
    const sim = fleet.hosts[0]!.sim;
    const hang = sim.faults.hangNext((argv) => argv.includes('info'));
    const c = p.forHost(endpoint);
    const t0 = performance.now();
    const err = await failure(c.exec(['xl', 'info'], { timeoutMs: 300 }));
    const elapsed = performance.now() - t0;
    expect(err.code).toBe('CommandTimeout');
    expect(elapsed).toBeGreaterThanOrEqual(295);
    expect(elapsed).toBeLessThan(800);
    hang.release();
    expect((await c.exec(['xl', 'list'])).exitCode).toBe(0);
  });

  it('a dropped connection fails the command in flight with HostUnreachable, and the next command reconnects', async () => {
    const { pool: p, endpoint } = open();
    const sim = fleet.hosts[0]!.sim;
    const c = p.forHost(endpoint);
    await c.exec(['xl', 'list']);
    sim.faults.dropNextCommand((argv) => argv.includes('info'));
    const err = await failure(c.exec(['xl', 'info']));
    expect(err.code).toBe('HostUnreachable');
    expect((await c.exec(['xl', 'list'])).exitCode).toBe(0);
    sim.faults.dropConnections();
    expect((await c.exec(['xl', 'list'])).exitCode).toBe(0);
  });

  it('a host that is down yields HostUnreachable quickly, and is used again once it is back', async () => {
    const { pool: p, endpoint } = open();
    const sim = fleet.hosts[0]!.sim;
    const c = p.forHost(endpoint);
    await c.exec(['xl', 'list']);
    await sim.faults.hostDown();
    try {
      const t0 = performance.now();
      const err = await failure(c.exec(['xl', 'list']));
      expect(err.code).toBe('HostUnreachable');
      expect(performance.now() - t0).toBeLessThan(1_000);
    } finally {
      await sim.faults.hostUp();
    }
    await expectEventually(
      async () =>
        (await c.exec(['xl', 'list']).then(
          () => true,
          () => false,
        )) === true,
    );
  });

  it('a host that hangs with TCP up never holds a caller past its deadline', async () => {
    const { pool: p, endpoint } = open({ connectTimeoutMs: 10_000 });
    const sim = fleet.hosts[0]!.sim;
    const c = p.forHost(endpoint);
    await c.exec(['xl', 'list']);
    sim.faults.hostHang();
    try {
      // On the open connection.
      const t0 = performance.now();
      expect((await failure(c.exec(['xl', 'list'], { timeoutMs: 300 }))).code).toBe('CommandTimeout');
      expect(performance.now() - t0).toBeLessThan(800);
      // And on a new connection stuck in its handshake.
      const fresh = new SshPool(
        sshOptions({ privateKey: fleet.hosts[0]!.privateKey, connectTimeoutMs: 10_000 }),
      );
      try {
        const t1 = performance.now();
        const err = await failure(fresh.forHost(endpoint).exec(['xl', 'list'], { timeoutMs: 300 }));
        expect(err.code).toBe('CommandTimeout');
        expect(err.details).toMatchObject({ phase: 'connect' });
        expect(performance.now() - t1).toBeLessThan(800);
      } finally {
        await fresh.close();
      }
    } finally {
      sim.faults.hostResume();
    }
  });

  it('a changed host key is refused before anything runs', async () => {
    const { pool: p, endpoint } = open();
    const sim = fleet.hosts[0]!.sim;
    const pinned = endpoint.hostKeyFingerprint;
    const fresh = await sim.faults.changeHostKey();
    try {
      const before = sim.log.length;
      const err = await failure(p.forHost(endpoint).exec(['xl', 'destroy', 'web1']));
      expect(err.code).toBe('HostKeyMismatch');
      expect(err.details).toMatchObject({ host: endpoint.name, expected: pinned, actual: fresh });
      expect(sim.log.length).toBe(before);
      // Trust on first use reads the new key without running anything either.
      expect(await readHostKeyFingerprint(endpoint.address, endpoint.port, 2_000)).toBe(fresh);
      expect(sim.log.length).toBe(before);
    } finally {
      endpoint.hostKeyFingerprint = fleet.hosts[0]!.fingerprint;
    }
  });
});

async function failure(promise: Promise<unknown>): Promise<DomainError> {
  try {
    await promise;
  } catch (err) {
    if (isDomainError(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

async function expectEventually(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
