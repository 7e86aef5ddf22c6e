/**
 * Test helpers: a pool on the real PostgreSQL at DATABASE_URL, and table names of their own per run.
 * An unreachable server fails the tests with a message that says so; nothing is ever skipped.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh identifier for this run: `<prefix>_<12 hex>`, a valid lower-case table name. */
export const uniqueName = (prefix: string): string => `${prefix}_${randomBytes(6).toString('hex')}`;

/** A pool on DATABASE_URL, checked with one query, so an unreachable server fails loudly and early. */
export async function testPool(config: pg.PoolConfig = {}): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5000, ...config });
  // An idle client that loses its connection emits 'error' on the pool; unhandled, it would crash
  // the test process. The tests that kill sessions on purpose check their own outcomes.
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => {});
    throw new Error(
      `PostgreSQL is not reachable at ${DATABASE_URL} (set DATABASE_URL to a server the tests may ` +
        `create and drop tables on): ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return pool;
}

/** Drop the given tables (and what depends on them), ignoring ones that do not exist. */
export async function dropTables(pool: pg.Pool, ...tables: string[]): Promise<void> {
  for (const table of tables) await pool.query(`DROP TABLE IF EXISTS ${table} CASCADE`);
}

/** Rows of `table` matching `where`, counted on a connection of its own. */
export async function countRows(pool: pg.Pool, table: string, where = 'true', values: unknown[] = []) {
  const result = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`, values);
  return result.rows[0].n as number;
}
