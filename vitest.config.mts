import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// SWC instead of esbuild: NestJS and TypeORM need emitDecoratorMetadata, which esbuild lacks.
const plugins = [swc.vite({ module: { type: 'es6' } })];

export default defineConfig({
  plugins,
  test: {
    setupFiles: ['reflect-metadata'],
    projects: [
      {
        plugins,
        test: {
          name: 'unit',
          include: ['apps/**/*.spec.ts', 'libs/**/*.spec.ts'],
          setupFiles: ['reflect-metadata'],
        },
      },
      {
        plugins,
        test: {
          name: 'medium',
          include: ['test/medium/**/*.medium-spec.ts', 'libs/**/*.medium-spec.ts'],
          setupFiles: ['reflect-metadata'],
          globalSetup: ['test/harness/medium.global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        plugins,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.e2e-spec.ts'],
          setupFiles: ['reflect-metadata'],
          globalSetup: ['test/harness/e2e.global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        plugins,
        test: {
          // The real Xen tier (npm run test:xen-real): its own lab, booted once per run, and
          // never part of the unit/medium/e2e runs.
          name: 'xen-real',
          include: ['test/xen-real/**/*.xen-real-spec.ts'],
          setupFiles: ['reflect-metadata'],
          globalSetup: ['test/harness/medium.global-setup.ts', 'test/xen-real/lab.global-setup.ts'],
          testTimeout: 900_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
