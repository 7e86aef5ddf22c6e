import { OncelyError } from '@oncely/core';
import type { PgQueryable } from './pg-types.ts';
import { parseTableName, type TableName } from './table-name.ts';

/** Options of `postgresStore()`. Every default is in `POSTGRES_DEFAULTS`. */
export interface PostgresStoreOptions {
  /**
   * A connected pool, e.g. `new pg.Pool(...)`: anything with `query(text, values)`. Transactional mode
   * also needs `connect()`. The store never ends it: the pool is yours.
   */
  pool: PgQueryable;
  /**
   * The records table, optionally schema-qualified (`billing.oncely_records`): lower-case letters,
   * digits and underscores. Create it with `store.migrate()` or `postgresSchema()`.
   * @default 'oncely_records'
   */
  table?: string;
  /** Records of different namespaces never see each other, even in one table. @default 'oncely' */
  namespace?: string;
  /** How often this namespace's expired rows are deleted; 0 disables (expired rows are still never returned). @default 60_000 */
  sweepIntervalMs?: number;
  /** Rows deleted per sweep statement: each batch is its own short transaction. @default 500 */
  sweepBatchSize?: number;
  /** Clock for the sweeper only; records get their times from the engine. @default Date.now */
  clock?: () => number;
}

/**
 * Every default of `postgresStore()`, in one place.
 * @example
 * postgresStore({ pool, sweepIntervalMs: 10 * POSTGRES_DEFAULTS.sweepIntervalMs });
 */
export const POSTGRES_DEFAULTS = Object.freeze({
  table: 'oncely_records',
  namespace: 'oncely',
  sweepIntervalMs: 60_000,
  sweepBatchSize: 500,
  // A wrapper rather than `Date.now` itself, so a test that mocks `Date` also moves the sweeper.
  clock: (): number => Date.now(),
});

/** The options, validated and merged with the defaults. */
export interface StoreConfig {
  pool: PgQueryable;
  table: TableName;
  namespace: string;
  sweepIntervalMs: number;
  sweepBatchSize: number;
  clock: () => number;
}

const OPTION_NAMES: ReadonlySet<string> = new Set<keyof PostgresStoreOptions>([
  'pool',
  'table',
  'namespace',
  'sweepIntervalMs',
  'sweepBatchSize',
  'clock',
]);
// setInterval takes a signed 32-bit count of milliseconds.
const MAX_MS = 2 ** 31 - 1;
// One sweep statement locks this many rows at most; larger batches would hold locks for long.
const MAX_BATCH = 100_000;

/** Merge with the defaults and reject unknown or invalid options, so a typo fails at start-up. */
export function resolveStoreOptions(options: PostgresStoreOptions): StoreConfig {
  if (typeof options !== 'object' || options === null) {
    throw invalid('postgresStore() takes an options object: postgresStore({ pool })');
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw invalid(`unknown option "${name}"`);
  }
  const { pool } = options;
  if (typeof pool !== 'object' || pool === null || typeof pool.query !== 'function') {
    throw invalid('"pool" must be a connected pool with query(text, values), e.g. new pg.Pool(...)');
  }
  const table = parseTableName(options.table ?? POSTGRES_DEFAULTS.table);
  if (typeof table === 'string') throw invalid(`"table" ${table}`);
  const namespace = options.namespace ?? POSTGRES_DEFAULTS.namespace;
  if (typeof namespace !== 'string' || namespace === '') {
    throw invalid('"namespace" must be a non-empty string');
  }
  const clock = options.clock ?? POSTGRES_DEFAULTS.clock;
  if (typeof clock !== 'function') throw invalid('"clock" must be a function returning epoch milliseconds');
  return {
    pool,
    table,
    namespace,
    sweepIntervalMs: integer(options.sweepIntervalMs, 'sweepIntervalMs', 0, MAX_MS),
    sweepBatchSize: integer(options.sweepBatchSize, 'sweepBatchSize', 1, MAX_BATCH),
    clock,
  };
}

function integer(
  given: unknown,
  name: 'sweepIntervalMs' | 'sweepBatchSize',
  min: number,
  max: number,
): number {
  const value = given ?? POSTGRES_DEFAULTS[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`"${name}" must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

function invalid(detail: string): OncelyError {
  return new OncelyError('ERR_ONCELY_INVALID_OPTION', `postgresStore: ${detail}`);
}
