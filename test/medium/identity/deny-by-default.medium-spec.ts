import { Controller, Get, Module } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig } from '@norm/core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuthGuard } from '../../../apps/api/src/identity/auth.guard';
import { createApiApp } from '../../../apps/api/src/api-app';
import { Public, RequirePermission } from '../../../apps/api/src/identity/permission.decorator';
import { REDIS_URL } from '../../harness/env';
import { useTestDatabase } from '../../harness/test-database';
import { useRedisPrefix } from '../../harness/test-redis';

@Controller('v1/forgotten')
class ForgottenController {
  @Get()
  list(): string[] {
    return [];
  }
}

@Controller('v1/fine')
class FineController {
  @Get()
  @RequirePermission('hosts:read')
  list(): string[] {
    return [];
  }

  @Get('health')
  @Public()
  health(): string {
    return 'ok';
  }
}

describe('deny by default', () => {
  const db = useTestDatabase();
  const prefix = useRedisPrefix();

  async function boot(controllers: Array<new () => unknown>): Promise<NestFastifyApplication> {
    const config = loadConfig({
      DATABASE_URL: db.url,
      REDIS_URL,
      NORM_REDIS_PREFIX: prefix,
      NORM_STATE_DIR: mkdtempSync(join(tmpdir(), 'norm-deny-')),
      NORM_LOG_LEVEL: 'silent',
    });
    @Module({ controllers })
    class ExtraModule {}
    const app = await createApiApp({ config, extraModules: [ExtraModule] });
    try {
      await app.init();
    } catch (error) {
      await app.close().catch(() => undefined);
      throw error;
    }
    return app;
  }

  it('refuses to boot when a route declares neither a permission nor @Public()', async () => {
    await expect(boot([FineController, ForgottenController])).rejects.toThrow(
      'routes without @RequirePermission or @Public(): ForgottenController.list',
    );
  });

  it('boots when every route declares one, and the guard still refuses an undeclared handler', async () => {
    const app = await boot([FineController]);
    try {
      const guard = app.get(AuthGuard);
      const undeclared = {
        getHandler: () => Reflect.get(ForgottenController.prototype, 'list') as unknown,
        getClass: () => ForgottenController,
        switchToHttp: () => ({
          getRequest: () => ({ headers: {}, ip: '127.0.0.1' }),
          getResponse: () => ({}),
        }),
      };
      await expect(guard.canActivate(undeclared as never)).rejects.toMatchObject({ code: 'Forbidden' });
      expect(app.get(Reflector)).toBeDefined();
    } finally {
      await app.close();
    }
  });
});
