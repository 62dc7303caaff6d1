import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { utils } from 'ssh2';
import { DomainError } from '@norm/core';

export interface PrivateKeySource {
  /** NORM_SSH_KEY_PATH. */
  keyPath?: string;
  /** NORM_SSH_PRIVATE_KEY: the key text itself, for secrets injected through the environment. */
  privateKey?: string;
  /** NORM_STATE_DIR, for the demo's default key `<stateDir>/ssh/id_ed25519`. */
  stateDir?: string;
}

/**
 * Resolves the private key once at boot, in the documented order (path, inline text,
 * demo default), and parses it so a bad or passphrase-protected key fails the boot with
 * the setting named, instead of failing every host's first handshake later.
 */
/** Where the key comes from when neither setting is given (the demo writes it there). */
export function defaultSshKeyPath(stateDir = '.norm'): string {
  return join(stateDir, 'ssh', 'id_ed25519');
}

/**
 * True when a key is configured or the default key file exists. Only the unconfigured,
 * absent case counts as "no key": a key that was configured but cannot be used is a boot
 * error (loadSshPrivateKey), because the operator asked for it.
 */
export function sshKeyConfigured(source: PrivateKeySource): boolean {
  return !!source.keyPath || !!source.privateKey || existsSync(defaultSshKeyPath(source.stateDir));
}

export function loadSshPrivateKey(source: PrivateKeySource): Buffer {
  let key: Buffer;
  let origin: string;
  if (source.keyPath) {
    origin = 'NORM_SSH_KEY_PATH';
    key = readKeyFile(source.keyPath, origin);
  } else if (source.privateKey) {
    origin = 'NORM_SSH_PRIVATE_KEY';
    // Environments often carry multi-line secrets with literal "\n" escapes.
    key = Buffer.from(
      source.privateKey.includes('\n') ? source.privateKey : source.privateKey.replace(/\\n/g, '\n'),
    );
  } else {
    origin = 'NORM_STATE_DIR/ssh/id_ed25519';
    key = readKeyFile(defaultSshKeyPath(source.stateDir), origin);
  }
  const parsed = utils.parseKey(key);
  if (parsed instanceof Error) {
    throw new DomainError('ConfigInvalid', 'SSH private key is not usable', {
      setting: origin,
      reason: parsed.message,
    });
  }
  return key;
}

function readKeyFile(path: string, origin: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new DomainError(
      'ConfigInvalid',
      'SSH private key file cannot be read',
      { setting: origin, path, reason: (err as Error).message },
      { cause: err },
    );
  }
}
