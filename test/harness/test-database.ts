import { dataSourceOptions } from '@norm/inventory';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, inject } from 'vitest';
import { databaseUrlFor, randomSuffix } from './env';
import { adminQuery, dropDatabase } from './postgres-admin';

export interface TestDatabase {
  name: string;
  url: string;
  dataSource: DataSource;
}

/** A fresh, migrated database for this test file, cloned from the run's template and dropped after. */
export function useTestDatabase(): TestDatabase {
  const name = `norm_t_${randomSuffix()}`;
  const db = { name, url: databaseUrlFor(name) } as TestDatabase;
  beforeAll(async () => {
    await adminQuery(`CREATE DATABASE "${name}" TEMPLATE "${inject('templateDatabase')}"`);
    db.dataSource = new DataSource(dataSourceOptions(db.url));
    await db.dataSource.initialize();
  });
  afterAll(async () => {
    await db.dataSource?.destroy();
    await dropDatabase(name);
  });
  return db;
}
