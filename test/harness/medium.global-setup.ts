import { dataSourceOptions } from '@norm/inventory';
import { DataSource } from 'typeorm';
import { databaseUrlFor, randomSuffix } from './env';
import { adminQuery, dropDatabase } from './postgres-admin';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
  }
}

/**
 * Migrates one template database per run; each test file then clones it with
 * `CREATE DATABASE … TEMPLATE`, which takes milliseconds instead of re-running migrations.
 */
// Typed structurally: vitest/node is ESM-only and this tree compiles as CommonJS.
export default async function setup(project: {
  provide(key: 'templateDatabase', value: string): void;
}): Promise<() => Promise<void>> {
  const template = `norm_tpl_${randomSuffix()}`;
  await adminQuery(`CREATE DATABASE "${template}"`);
  const ds = new DataSource(dataSourceOptions(databaseUrlFor(template)));
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
  await ds.destroy();
  project.provide('templateDatabase', template);
  return async () => {
    await dropDatabase(template);
  };
}
