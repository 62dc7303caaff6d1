/**
 * The demo: three simulated Xen hosts (in-process SSH servers), the api and the worker as
 * real processes, and the hosts registered through the API so a newcomer has a fleet to
 * play with. Stops everything on Ctrl-C.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '@norm/core';
import {
  generateEd25519,
  type SimulatedFleet,
  type SimulatedFleetIdentity,
  startSimulatedFleet,
} from '@norm/xen/testing';

const ROOT = join(__dirname, '..');

async function main(): Promise<void> {
  const config = loadConfig();
  // NORM_STATE_DIR may be absolute; a relative one is relative to the checkout, as in the apps.
  const stateDir = resolve(ROOT, config.stateDir);
  const logDir = join(stateDir, 'demo');
  mkdirSync(logDir, { recursive: true });

  const fleet = await startDemoFleet(join(logDir, 'fleet-identity.json'));
  const env = {
    ...process.env,
    NORM_SSH_KEY_PATH: fleet.clientKey.privateKeyPath,
    NORM_XEN_CONFIG_DIR: fleet.hosts[0]?.configDir ?? config.xenConfigDir,
  };
  const children: ChildProcess[] = [];
  for (const app of ['api', 'worker'] as const) {
    const child = spawn(process.execPath, ['-r', './scripts/register.js', `apps/${app}/src/main.ts`], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = createWriteStream(join(logDir, `${app}.log`), { flags: 'a' });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    child.on('exit', (code, signal) => {
      console.error(`demo: ${app} exited (${signal ?? code}); see ${join(logDir, `${app}.log`)}`);
      void shutdown(1);
    });
    children.push(child);
  }

  const base = `http://${config.apiHost}:${config.apiPort}`;
  await waitFor(`${base}/readyz`, 60_000);
  const tokenPath = join(stateDir, 'admin-token');
  const token = existsSync(tokenPath) ? readFileSync(tokenPath, 'utf8').trim() : undefined;
  const registered = token ? await registerHosts(base, token, fleet.hosts) : [];

  console.log(`Norm is running.
  API:      ${base}   (OpenAPI: ${base}/openapi.json, docs: ${base}/docs)
  token:    ${tokenPath} (admin; send as "Authorization: Bearer <token>")
  logs:     ${logDir}/api.log, ${logDir}/worker.log
  hosts:`);
  for (const h of fleet.hosts) {
    console.log(
      `    ${h.name}  ssh ${h.user}@${h.address}:${h.port}  ${h.fingerprint}  ${registered.includes(h.name) ? 'registered' : 'not registered'}`,
    );
  }
  console.log('Press Ctrl-C to stop.');

  let stopping = false;
  async function shutdown(code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : Promise.resolve())),
    );
    await fleet.stop();
    process.exit(code);
  }
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
}

/**
 * The demo's hosts keep their keys and ports across starts (saved under .norm/demo), so the
 * hosts registered by an earlier start are still the same hosts: their rows, pinned keys
 * and any instances on them stay valid. The simulated domains themselves start empty.
 */
async function startDemoFleet(identityPath: string): Promise<SimulatedFleet> {
  const count = 3;
  let identity: SimulatedFleetIdentity | undefined;
  try {
    identity = JSON.parse(readFileSync(identityPath, 'utf8')) as SimulatedFleetIdentity;
  } catch {
    identity = undefined;
  }
  identity ??= {
    clientKey: generateEd25519('norm@demo'),
    hosts: Array.from({ length: count }, () => ({ hostKey: generateEd25519('root@sim-xen'), port: 0 })),
  };
  const start = (id: SimulatedFleetIdentity): Promise<SimulatedFleet> =>
    startSimulatedFleet({ count, mode: 'inprocess', namePrefix: 'sim-xen-', identity: id });
  let fleet: SimulatedFleet;
  try {
    fleet = await start(identity);
  } catch (error) {
    // A saved port taken by something else: new ports; registration then re-pins the hosts.
    console.error(`demo: saved host ports unavailable (${String(error)}); using new ones`);
    const keysOnly = identity;
    fleet = await start({ ...keysOnly, hosts: keysOnly.hosts.map((h) => h && { ...h, port: 0 }) });
  }
  const saved: SimulatedFleetIdentity = {
    clientKey: identity.clientKey,
    hosts: fleet.hosts.map((h, i) => ({ hostKey: identity.hosts[i]!.hostKey, port: h.port })),
  };
  writeFileSync(identityPath, JSON.stringify(saved), { mode: 0o600 });
  return fleet;
}

async function waitFor(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not become ready in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Registers every simulated host. A host already registered by an earlier start is kept when
 * its address, port and key still match, and otherwise deleted and registered again (which
 * the API refuses while instances still point at it; the message says so).
 */
async function registerHosts(
  base: string,
  token: string,
  hosts: Array<{ name: string; address: string; port: number; user: string; fingerprint: string }>,
): Promise<string[]> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const done: string[] = [];
  for (const h of hosts) {
    const body = {
      name: h.name,
      address: h.address,
      port: h.port,
      sshUser: h.user,
      hostKeyFingerprint: h.fingerprint,
      labels: { rack: 'demo', environment: 'demo' },
    };
    const post = (): Promise<Response> =>
      fetch(`${base}/v1/hosts`, { method: 'POST', headers, body: JSON.stringify(body) });
    let res = await post();
    if (res.status === 409) {
      const list = (await (await fetch(`${base}/v1/hosts`, { headers })).json()) as Array<{
        id: string;
        name: string;
        address: string;
        port: number;
        hostKeyFingerprint: string;
      }>;
      const old = list.find((row) => row.name === h.name);
      if (
        old &&
        old.address === h.address &&
        old.port === h.port &&
        old.hostKeyFingerprint === h.fingerprint
      ) {
        done.push(h.name);
        continue;
      }
      if (old) {
        const del = await fetch(`${base}/v1/hosts/${old.id}`, { method: 'DELETE', headers });
        if (!del.ok) {
          console.error(
            `demo: ${h.name} is registered with another endpoint and cannot be replaced: ${del.status} ${await del.text()}`,
          );
          continue;
        }
        res = await post();
      }
    }
    if (res.ok) done.push(h.name);
    else console.error(`demo: registering ${h.name} answered ${res.status}: ${await res.text()}`);
  }
  return done;
}

main().catch((error: unknown) => {
  console.error('demo failed:', error);
  process.exit(1);
});
