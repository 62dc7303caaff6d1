import { DomainError, type XenHostFactory } from '@norm/core';
import { readHostKeyFingerprint } from '@norm/xen';

/** DI token for the Xen transport; apps/api/src/main.ts (or a test) supplies the implementation. */
export const XEN_HOST_FACTORY = Symbol('XEN_HOST_FACTORY');

/**
 * Used when no transport was given: registration then fails with a clear 503 instead of the
 * app refusing to boot, so every other route keeps working. Reading a host key needs no
 * client key, so scanning one still works.
 */
export const unconfiguredXenHostFactory: XenHostFactory = {
  forHost() {
    throw new DomainError('DependencyUnavailable', 'no Xen transport is configured in this API process');
  },
  readFingerprint(address, port, timeoutMs) {
    return readHostKeyFingerprint(address, port, timeoutMs);
  },
  close: () => Promise.resolve(),
};
