/**
 * Injection tokens for values whose types are interfaces (which do not exist at run time).
 * The TypeORM `DataSource` and the ioredis `Redis` client are injected by their classes.
 */
export const NORM_CONFIG = 'NORM_CONFIG';
/** The `Logger` port from @norm/core, backed by pino. */
export const NORM_LOGGER = 'NORM_LOGGER';
/** The process's root pino instance, for code that needs pino itself (e.g. the api's filter). */
export const NORM_PINO = 'NORM_PINO';
