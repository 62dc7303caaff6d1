import { type HostEndpoint } from '@norm/core';
import { startSimulatedFleet } from '@norm/xen/testing';
import { quoteArgv } from '@norm/xen';

export interface BenchHost {
  endpoint: HostEndpoint;
  /** The exact command line the pool sends for argv, so the raw path runs the same command. */
  commandLine(argv: readonly string[]): string;
}

/** Simulated in-process hosts (fake xl behind an ssh2 server), one client key for all. */
export async function startBenchHosts(
  count: number,
): Promise<{ hosts: BenchHost[]; privateKey: Buffer; description: string; close(): Promise<void> }> {
  const fleet = await startSimulatedFleet({ count, mode: 'inprocess', namePrefix: 'bench' });
  return {
    privateKey: Buffer.from(fleet.clientKey.privateKey),
    description: `${count} simulated Xen hosts, in-process ssh2 servers on loopback`,
    hosts: fleet.hosts.map((h) => ({
      endpoint: {
        name: h.name,
        address: h.address,
        port: h.port,
        user: h.user,
        hostKeyFingerprint: h.fingerprint,
        sudo: false,
      },
      commandLine: (argv) => quoteArgv(argv),
    })),
    close: () => fleet.stop(),
  };
}
