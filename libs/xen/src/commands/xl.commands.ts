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

/**
 * `-ww` waits until the domain is destroyed, not merely shut down (`-w` returns at `---s--`,
 * while the domain still holds its memory and disks; XL.md 3.2). Norm's shutdown means
 * "gone afterwards", which decommission needs before it removes volumes; the caller's own
 * deadline decides when to stop waiting and destroy.
 */
export function xlShutdownArgv(name: string): Argv {
  assertDomainName(name);
  return ['xl', 'shutdown', '-ww', name];
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
