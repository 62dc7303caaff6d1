import { type FactoryProvider } from '@nestjs/common';
import { DomainError, type Logger, type NormConfig } from '@norm/core';
import { dataSourceOptions } from '@norm/inventory';
import { DataSource } from 'typeorm';
import { NORM_CONFIG, NORM_LOGGER } from '../tokens';

/**
 * A pool connection attempt that hangs (a black-holed network, not a refused port) fails
 * after this long instead of holding a request or a job indefinitely.
 */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * The TypeORM data source, initialized while the module graph starts: a process that cannot
 * reach Postgres at boot fails fast and visibly, and its supervisor retries. After boot, a
 * lost database is reported by the api's /readyz and each query fails on its own; the pg
 * pool reconnects by itself when Postgres returns.
 */
export const dataSourceProvider: FactoryProvider<DataSource> = {
  provide: DataSource,
  inject: [NORM_CONFIG, NORM_LOGGER],
  useFactory: async (config: NormConfig, log: Logger): Promise<DataSource> => {
    const dataSource = new DataSource(
      dataSourceOptions(config.databaseUrl, { connectTimeoutMS: CONNECT_TIMEOUT_MS }),
    );
    try {
      await dataSource.initialize();
    } catch (cause) {
      throw new DomainError(
        'DependencyUnavailable',
        'postgres unreachable at boot',
        { dependency: 'postgres' },
        { cause },
      );
    }
    log.info('postgres connected', { database: dataSource.driver.database });
    return dataSource;
  },
};
