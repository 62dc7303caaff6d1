import { type DataSourceOptions } from 'typeorm';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';

/**
 * The one description of Norm's database, shared by both apps, the tests and the
 * migrations CLI. Schema changes only through migrations: `synchronize` stays off.
 */
export function dataSourceOptions(
  databaseUrl: string,
  overrides: Partial<DataSourceOptions> = {},
): DataSourceOptions {
  return {
    type: 'postgres',
    url: databaseUrl,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'schema_migrations',
    migrationsTransactionMode: 'each',
    // gen_random_uuid() is built into Postgres 13+, so no extension has to be installed.
    uuidExtension: 'pgcrypto',
    installExtensions: false,
    synchronize: false,
    logging: false,
    // A connection idle for 5 minutes is closed (node-postgres's default is 10 s). A new
    // backend pays 20–200 ms on its first statements (catalog caches, plans, PL/pgSQL
    // functions); on bench/api, connections closed between bursts made the first creation
    // batch of each burst the slowest request of the run.
    extra: { max: 20, idleTimeoutMillis: 300_000, application_name: 'norm' },
    ...overrides,
  } as DataSourceOptions;
}
