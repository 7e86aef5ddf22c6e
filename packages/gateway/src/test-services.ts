/**
 * Test helpers: the real Redis (REDIS_URL) and PostgreSQL (DATABASE_URL) the gateway tests run on.
 * An unreachable server fails the tests with a message that says what to start; nothing is skipped.
 */

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A name of this run's own: `<prefix>_<12 hex>`, usable as a Redis prefix part and a table name. */
export const unique = (prefix: string): string => `${prefix}_${randomBytes(6).toString('hex')}`;

/** A connected ioredis client that does not reconnect, or an error that says Redis is missing. */
export async function connectRedis(): Promise<Redis> {
  const client = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  let cause: unknown;
  client.on('error', (error: unknown) => {
    cause ??= error;
  });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    const reason =
      (cause ?? error) instanceof Error ? ((cause ?? error) as Error).message : String(cause ?? error);
    throw new Error(
      `Redis is not reachable at ${REDIS_URL} (${reason}). The gateway tests need a real server: start one ` +
        '(redis-server, or docker run -p 6379:6379 redis:7) or point REDIS_URL at one.',
      { cause: cause ?? error },
    );
  }
  return client;
}

/** Delete every key under `prefix` (SCAN, never KEYS on a shared server). */
export async function deleteRedisKeys(client: Redis, prefix: string): Promise<void> {
  if (!/^[\w:.-]+$/.test(prefix)) throw new Error(`refusing to delete by a pattern-like prefix: ${prefix}`);
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== '0');
}

/** A pool on DATABASE_URL, checked with one query, or an error that says PostgreSQL is missing. */
export async function connectPostgres(): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5000 });
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => {});
    throw new Error(
      `PostgreSQL is not reachable at ${DATABASE_URL} (${error instanceof Error ? error.message : String(error)}). ` +
        'The gateway tests need a real server where they may create and drop tables: start one or set DATABASE_URL.',
      { cause: error },
    );
  }
  return pool;
}
