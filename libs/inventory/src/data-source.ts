import { DataSource } from 'typeorm';
import { dataSourceOptions } from './data-source.options';

/** Used by the TypeORM CLI (`npm run migration:run`); the apps build theirs from the typed config. */
export default new DataSource(
  dataSourceOptions(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/norm'),
);
