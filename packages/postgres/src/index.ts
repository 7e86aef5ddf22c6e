/**
 * @oncely/postgres: the PostgreSQL store for Oncely, and transactional mode, in which your own writes
 * and the completion of the idempotency record commit in one transaction. Takes your `pg` Pool; no
 * runtime dependency on the driver.
 */
export type { PgPool, PgPoolClient, PgQueryable, PgQueryResult, PoolClientOf } from './pg-types.ts';
export { type PostgresStore, postgresStore } from './postgres-store.ts';
export { postgresSchema } from './schema.ts';
export { POSTGRES_DEFAULTS, type PostgresStoreOptions } from './store-options.ts';
export {
  TRANSACTIONAL_DEFAULTS,
  type Transactional,
  type TransactionalOptions,
  type TransactionalResponse,
  type TransactionalWork,
  transactional,
} from './transactional.ts';
