import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { IdentityService, type Logger, type NormConfig } from '@norm/core';
import { NORM_CONFIG, NORM_LOGGER } from '@norm/platform';

/**
 * First start: when no live admin token exists, creates an admin principal and token and
 * writes the token to `<NORM_STATE_DIR>/admin-token` (mode 0600, written to a temp file
 * and renamed, so a reader never sees half a token). The log says where, never what.
 */
@Injectable()
export class BootstrapAdmin implements OnApplicationBootstrap {
  constructor(
    @Inject(IdentityService) private readonly identity: IdentityService,
    @Inject(NORM_CONFIG) private readonly config: NormConfig,
    @Inject(NORM_LOGGER) private readonly log: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const path = join(this.config.stateDir, 'admin-token');
    const created = await this.identity.bootstrapAdmin(async (token) => {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, `${token}\n`, { mode: 0o600 });
      await rename(tmp, path);
    });
    if (created) {
      this.log.warn('bootstrap admin token created', { path, principalId: created.principalId });
    }
  }
}
