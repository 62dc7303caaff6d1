import { describe, expect, it } from 'vitest';
import { SimConnectionDropped, SimulatedXenHost } from './xen-host.sim';

describe('SimulatedXenHost faults', () => {
  it('fails the next N matching commands with the chosen result', async () => {
    const h = new SimulatedXenHost();
    h.faults.failNext(2, { exitCode: 255, stderr: 'boom\n' }, (argv) => argv.includes('list'));
    expect(await h.exec(['xl', 'info', 'host'])).toMatchObject({ exitCode: 0 });
    expect(await h.exec(['xl', 'list'])).toEqual({ stdout: '', stderr: 'boom\n', exitCode: 255 });
    expect(await h.exec(['xl', 'list'])).toEqual({ stdout: '', stderr: 'boom\n', exitCode: 255 });
    expect((await h.exec(['xl', 'list'])).exitCode).toBe(0);
  });

  it('holds a command until released', async () => {
    const h = new SimulatedXenHost();
    const hang = h.faults.hangNext();
    let done = false;
    const p = h.exec(['xl', 'list']).then((r) => {
      done = true;
      return r;
    });
    expect(await hang.caught).toEqual(['xl', 'list']);
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false);
    hang.release();
    expect((await p).exitCode).toBe(0);
  });

  it('adds latency and drops connections on request', async () => {
    const h = new SimulatedXenHost();
    h.faults.setLatency(30);
    const t0 = Date.now();
    await h.exec(['xl', 'list']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    let dropped = 0;
    h.onDropRequested(() => dropped++);
    h.faults.dropNextCommand();
    await expect(h.exec(['xl', 'list'])).rejects.toBeInstanceOf(SimConnectionDropped);
    expect(dropped).toBe(1);
  });

  it('keeps a log of argv and sudo use', async () => {
    const h = new SimulatedXenHost();
    await h.exec(['sudo', '-n', 'xl', 'list']);
    await h.exec(['norm-argv', 'a b', "'"]);
    expect(h.commands(['xl']).map((c) => c.sudo)).toEqual([true]);
    expect(h.log.map((c) => c.argv)).toEqual([
      ['sudo', '-n', 'xl', 'list'],
      ['norm-argv', 'a b', "'"],
    ]);
  });

  it('hides xl from an unprivileged login user unless sudo is used', async () => {
    const h = new SimulatedXenHost({ requireSudo: true });
    expect(await h.exec(['xl', 'list'])).toEqual({
      stdout: '',
      stderr: 'sh: 1: xl: not found\n',
      exitCode: 127,
    });
    expect((await h.exec(['sudo', '-n', 'xl', 'list'])).exitCode).toBe(0);
  });

  it('lets a guest ignore shutdown', async () => {
    const h = new SimulatedXenHost({ timings: { shutdownMs: 0, cleanupMs: 0 } });
    h.fs.writeFile('/var/lib/norm/domains/g.cfg', 'name = "g"\nmemory = 64\n');
    await h.exec(['xl', 'create', '/var/lib/norm/domains/g.cfg']);
    h.faults.ignoreShutdown('g');
    await h.exec(['xl', 'shutdown', 'g']);
    expect((await h.exec(['xl', 'list', 'g'])).stdout).toContain('-b----');
  });
});
