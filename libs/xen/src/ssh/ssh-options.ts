import { type Logger, type NormConfig, silentLogger } from '@norm/core';
import { type BackoffPolicy } from './backoff';
import { loadSshPrivateKey } from './ssh-private-key';

/** Everything the SSH transport needs; built once at boot (see sshOptionsFromConfig). */
export interface SshTransportOptions {
  /** OpenSSH or PEM private key text (never a passphrase-protected one: boots are unattended). */
  privateKey: Buffer | string;
  /** TCP connect + handshake + auth must finish within this (NORM_SSH_CONNECT_TIMEOUT). */
  connectTimeoutMs: number;
  /** Default per-command deadline, from the call to the result (NORM_SSH_COMMAND_TIMEOUT). */
  commandTimeoutMs: number;
  /** Concurrent channels per connection, below sshd's MaxSessions (NORM_SSH_MAX_CHANNELS). */
  maxChannels: number;
  /** SSH-level keepalive period (NORM_SSH_KEEPALIVE_INTERVAL); 0 disables it. */
  keepaliveIntervalMs: number;
  /** Missed keepalives before the connection counts as dead. */
  keepaliveCountMax: number;
  /** Reconnect pacing after failed connection attempts. */
  backoff: BackoffPolicy;
  /**
   * After a command times out its channel is closed; if the far side has not confirmed the
   * close within this grace the whole connection is presumed wedged and torn down, because
   * a channel slot that is never given back would slowly starve the host's queue.
   */
  closeGraceMs: number;
  /** A connection with nothing in flight for this long is closed (hosts removed from inventory stop costing a socket). */
  idleTimeoutMs: number;
  /** Upper bound for stdout + stderr of one command, so a runaway command cannot exhaust memory. */
  maxOutputBytes: number;
  logger: Logger;
  /** Injected for deterministic jitter in tests. */
  random: () => number;
}

export const SSH_DEFAULTS = {
  connectTimeoutMs: 10_000,
  commandTimeoutMs: 120_000,
  maxChannels: 8,
  keepaliveIntervalMs: 15_000,
  // 3 × 15 s: a dead TCP path is noticed within ~45 s even when no command is running.
  keepaliveCountMax: 3,
  // 250 ms first retry (a blip), doubling to 15 s (a host that comes back is used again quickly).
  backoff: { baseMs: 250, maxMs: 15_000 },
  closeGraceMs: 5_000,
  idleTimeoutMs: 10 * 60_000,
  // `xl list -l` is ~4 KiB per domain; 32 MiB is thousands of domains with room to spare.
  maxOutputBytes: 32 * 1024 * 1024,
} as const;

export function sshOptions(
  overrides: Partial<SshTransportOptions> & Pick<SshTransportOptions, 'privateKey'>,
): SshTransportOptions {
  return {
    ...SSH_DEFAULTS,
    backoff: { ...SSH_DEFAULTS.backoff },
    logger: silentLogger,
    random: Math.random,
    ...overrides,
  };
}

/** Transport options from the validated config; reads and checks the private key now, at boot. */
export function sshOptionsFromConfig(config: NormConfig, logger: Logger = silentLogger): SshTransportOptions {
  return sshOptions({
    privateKey: loadSshPrivateKey({
      keyPath: config.sshKeyPath,
      privateKey: config.sshPrivateKey,
      stateDir: config.stateDir,
    }),
    connectTimeoutMs: config.sshConnectTimeoutMs,
    commandTimeoutMs: config.sshCommandTimeoutMs,
    maxChannels: config.sshMaxChannels,
    keepaliveIntervalMs: config.sshKeepaliveMs,
    logger,
  });
}
