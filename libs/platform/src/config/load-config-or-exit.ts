import { ConfigInvalid, loadConfig, type NormConfig } from '@norm/core';
import { type PlatformApp } from '../logging/root-logger';

/**
 * sysexits' EX_CONFIG. A supervisor can tell "fix the environment" from a crash and stop
 * restarting (systemd: `RestartPreventExitStatus=78`).
 */
export const EXIT_CONFIG_INVALID = 78;

/**
 * Reads the configuration before anything else starts. A bad environment ends the process
 * with ONE plain line on stderr naming every bad variable: no logger exists yet (its level is
 * itself a setting), and an operator reading `journalctl` wants the sentence, not a stack.
 */
export function loadConfigOrExit(
  app: PlatformApp,
  env: Readonly<Record<string, string | undefined>> = process.env,
): NormConfig {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigInvalid)) throw err;
    process.stderr.write(`norm-${app}: ${err.message}\n`);
    process.exit(EXIT_CONFIG_INVALID);
  }
}
