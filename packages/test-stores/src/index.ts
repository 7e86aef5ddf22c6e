/**
 * Every Oncely store, on the real servers of this machine, for suites that must pass on each of them
 * (the HTTP behaviour suite of every adapter and of the gateway). Redis and PostgreSQL come from
 * REDIS_URL and DATABASE_URL; when a server is unreachable the first store it backs fails with a
 * message that says so. Nothing is ever skipped.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryStore, type Store, tieredStore } from '@oncely/core';
import { postgresStore } from '@oncely/postgres';
import { type RedisStore, redisStore } from '@oncely/redis';
import { sqliteStore } from '@oncely/sqlite';
import { Redis } from 'ioredis';
import pg from 'pg';

export { type FaultProxy, type FaultProxyOptions, faultProxy } from './fault-proxy.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** One kind of store: a fresh, isolated store per call, and a cleanup for the suite's end. */
export interface TestStoreKind {
  name: 'memory' | 'sqlite' | 'redis' | 'postgres' | 'tiered';
  store: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

/** 12 hex characters of this run's own: a part of a Redis prefix or a table name. */
export const unique = (): string => randomBytes(6).toString('hex');

function unreachable(service: string, url: string, error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(`${service} is not reachable at ${url} (${reason}); these tests need the real server.`, {
    cause: error,
  });
}

/** A connected ioredis client that does not reconnect, or an error that says Redis is missing. */
export async function connectRedis(): Promise<Redis> {
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  let cause: unknown;
  redis.on('error', (error: unknown) => {
    cause ??= error;
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw unreachable('Redis', REDIS_URL, cause ?? error);
  }
  return redis;
}

/** Delete every key under `prefix` (SCAN, never KEYS on a shared server). */
export async function deleteRedisKeys(redis: Redis, prefix: string): Promise<void> {
  if (!/^[\w:.-]+$/.test(prefix)) throw new Error(`refusing to delete by a pattern-like prefix: ${prefix}`);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

/** A pool on DATABASE_URL, checked with one query, or an error that says PostgreSQL is missing. */
export async function connectPostgres(config: pg.PoolConfig = {}): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5000, ...config });
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => {});
    throw unreachable('PostgreSQL', DATABASE_URL, error);
  }
  return pool;
}

/** Records under a prefix of their own on the shared Redis; the keys are deleted at cleanup. */
function redisKind(): Omit<TestStoreKind, 'store'> & { store: () => Promise<RedisStore> } {
  const prefix = `oncely-test:${unique()}:`;
  let client: Promise<Redis> | undefined;
  let stores = 0;
  return {
    name: 'redis',
    store: async () => {
      client ??= connectRedis();
      return redisStore({ client: await client, prefix: `${prefix}${++stores}:` });
    },
    cleanup: async () => {
      if (!client) return;
      const redis = await client;
      await deleteRedisKeys(redis, prefix);
      redis.disconnect();
    },
  };
}

/** A table of its own on the shared PostgreSQL, migrated once and dropped at cleanup. */
function postgresKind(): TestStoreKind {
  const table = `oncely_test_${unique()}`;
  let ready: Promise<pg.Pool> | undefined;
  const connect = async (): Promise<pg.Pool> => {
    const pool = await connectPostgres({ max: 20 });
    await postgresStore({ pool, table, sweepIntervalMs: 0 }).migrate();
    return pool;
  };
  let stores = 0;
  return {
    name: 'postgres',
    store: async () => {
      ready ??= connect();
      return postgresStore({ pool: await ready, table, namespace: `ns${++stores}`, sweepIntervalMs: 0 });
    },
    cleanup: async () => {
      if (!ready) return;
      const pool = await ready;
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    },
  };
}

/**
 * The classic layout: Redis in front of PostgreSQL (`tieredStore`), each store of the pair isolated as
 * above. Closing the tiered store leaves the pair open (it did not create them); they need no closing.
 */
function tieredKind(): TestStoreKind {
  const cache = redisKind();
  const durable = postgresKind();
  return {
    name: 'tiered',
    store: async () => tieredStore({ cache: await cache.store(), durable: await durable.store() }),
    cleanup: async () => {
      await Promise.all([cache.cleanup(), durable.cleanup()]);
    },
  };
}

/** A file per store in a temp dir of its own, removed at cleanup. */
function sqliteKind(): TestStoreKind {
  let dir: string | undefined;
  let files = 0;
  return {
    name: 'sqlite',
    store: async () => {
      dir ??= mkdtempSync(join(tmpdir(), 'oncely-test-'));
      return sqliteStore({ database: join(dir, `oncely-${++files}.db`), sweepIntervalMs: 0 });
    },
    cleanup: async () => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Every store kind, each with its own isolation (prefix, table, files).
 * @example
 * for (const kind of testStores()) describeHttpBehaviour({ name: `express + ${kind.name}`, ...kind, start });
 */
export function testStores(): TestStoreKind[] {
  return [
    { name: 'memory', store: async () => memoryStore({ sweepIntervalMs: 0 }), cleanup: async () => {} },
    sqliteKind(),
    redisKind(),
    postgresKind(),
    tieredKind(),
  ];
}
