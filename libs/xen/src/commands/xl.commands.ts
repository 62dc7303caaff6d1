import { assertAbsolutePath, assertDomainName } from '../validation/allow-lists';

/**
 * argv for every xl invocation Norm makes. The simulator implements exactly these forms, so
 * a change here is a change to the simulator contract too.
 */
export type Argv = readonly string[];

export function xlInfoArgv(): Argv {
  return ['xl', 'info'];
}

export function xlListArgv(): Argv {
  return ['xl', 'list'];
}

export function xlListLongArgv(): Argv {
  return ['xl', 'list', '-l'];
}

export function xlCreateArgv(cfgPath: string): Argv {
  assertAbsolutePath(cfgPath, 'cfgPath');
  return ['xl', 'create', cfgPath];
}

/** `-w` waits for the shutdown to complete, so the caller's own deadline decides when to destroy. */
export function xlShutdownArgv(name: string): Argv {
  assertDomainName(name);
  return ['xl', 'shutdown', '-w', name];
}

export function xlDestroyArgv(name: string): Argv {
  assertDomainName(name);
  return ['xl', 'destroy', name];
}

export function xlRebootArgv(name: string): Argv {
  assertDomainName(name);
  return ['xl', 'reboot', name];
}

export function xlPauseArgv(name: string): Argv {
  assertDomainName(name);
  return ['xl', 'pause', name];
}

export function xlUnpauseArgv(name: string): Argv {
  assertDomainName(name);
  return ['xl', 'unpause', name];
}
