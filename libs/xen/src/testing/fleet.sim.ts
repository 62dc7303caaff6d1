import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateEd25519, type SimKeyPair } from './host-key.sim';
import { OpenSshHost } from './openssh.sim';
import { InProcessSshServer } from './ssh-sim.server';
import { SimulatedXenHost } from './xen-host.sim';
import { type SimHostOptions } from './xen-sim.state';

/**
 * Several simulated hosts side by side, each with its own port, host key and state, plus one
 * client key pair for the whole fleet (what Norm would be configured with).
 */
export type SimulatedFleetMode = 'inprocess' | 'openssh';

export interface SimulatedFleetOptions {
  count: number;
  mode: SimulatedFleetMode;
  /** Login user for the in-process mode (default `norm`); openssh mode always uses the current user. */
  user?: string;
  /** Host names are `${namePrefix}${i + 1}` (default `xen`). */
  namePrefix?: string;
  /** Options for every host, or per host by index. */
  hostOptions?: SimHostOptions | ((index: number) => SimHostOptions);
  /**
   * In-process mode: a fixed identity (client key, and per host its key and port) instead of
   * fresh ones, so a fleet restarted later is the same fleet to whoever registered it.
   */
  identity?: SimulatedFleetIdentity;
}

export interface SimulatedFleetIdentity {
  clientKey: SimKeyPair;
  hosts: Array<{ hostKey: SimKeyPair; port: number } | undefined>;
}

export interface SimulatedFleetHost {
  name: string;
  address: string;
  port: number;
  user: string;
  /** Current host key fingerprint (changes after `sim.faults.changeHostKey()`). */
  readonly fingerprint: string;
  /** The fleet's client private key (OpenSSH format) and a 0600 file holding it. */
  privateKey: Buffer;
  privateKeyPath: string;
  /** Where Norm should upload xl configs on this host. */
  configDir: string;
  mode: SimulatedFleetMode;
  sim: SimulatedXenHost;
  stop(): Promise<void>;
}

export interface SimulatedFleet {
  hosts: SimulatedFleetHost[];
  clientKey: SimKeyPair & { privateKeyPath: string };
  stop(): Promise<void>;
}

export async function startSimulatedFleet(opts: SimulatedFleetOptions): Promise<SimulatedFleet> {
  const clientKey = opts.identity?.clientKey ?? generateEd25519('norm@control-plane');
  const keyDir = await mkdtemp(join(tmpdir(), 'norm-fleet-'));
  const privateKeyPath = join(keyDir, 'id_ed25519');
  await writeFile(privateKeyPath, clientKey.privateKey, { mode: 0o600 });
  const hosts: SimulatedFleetHost[] = [];
  const stoppers: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    await Promise.all(stoppers.map((s) => s()));
    await rm(keyDir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < opts.count; i++) {
      const name = `${opts.namePrefix ?? 'xen'}${i + 1}`;
      const hostOpts =
        typeof opts.hostOptions === 'function' ? opts.hostOptions(i) : (opts.hostOptions ?? {});
      if (opts.mode === 'inprocess') {
        const sim = new SimulatedXenHost({ hostname: name, ...hostOpts });
        const user = opts.user ?? 'norm';
        const fixed = opts.identity?.hosts[i];
        const server = new InProcessSshServer({
          host: sim,
          user,
          clientPublicKey: clientKey.publicKey,
          hostKey: fixed?.hostKey,
          port: fixed?.port,
        });
        const port = await server.start();
        stoppers.push(() => server.stop());
        hosts.push({
          name,
          address: '127.0.0.1',
          port,
          user,
          get fingerprint() {
            return server.hostKey.fingerprint;
          },
          privateKey: Buffer.from(clientKey.privateKey),
          privateKeyPath,
          configDir: sim.configDir,
          mode: 'inprocess',
          sim,
          stop: () => server.stop(),
        });
      } else {
        // The sshd mode's config dir is a real temp dir (exposed as configDir); the sim
        // reads `xl create` paths from the real filesystem there.
        const sim = new SimulatedXenHost({ hostname: name, ...hostOpts });
        const ssh = new OpenSshHost({ host: sim, clientPublicKey: clientKey.publicKey });
        const port = await ssh.start();
        stoppers.push(() => ssh.stop());
        hosts.push({
          name,
          address: '127.0.0.1',
          port,
          user: ssh.user,
          get fingerprint() {
            return ssh.hostKey.fingerprint;
          },
          privateKey: Buffer.from(clientKey.privateKey),
          privateKeyPath,
          configDir: ssh.configDir,
          mode: 'openssh',
          sim,
          stop: () => ssh.stop(),
        });
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { hosts, clientKey: { ...clientKey, privateKeyPath }, stop };
}
