/** Store state isolation: every case run gets its own tag, and what it wrote is removed afterwards. */
import { rm } from 'node:fs/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pgTable } from './server/stores.ts';

let counter = 0;
const stamp = Date.now().toString(36);

/** A tag unique to this harness run and case run; only [a-z0-9], so it is safe in a table name and a glob. */
export function newTag(): string {
  counter++;
  return `b${stamp}n${counter}e`;
}

/** Every Redis key a case run can write: Oncely's, node-idempotency's and Powertools' prefixes, and express-idempotency's raw keys. */
export function redisPatterns(tag: string): string[] {
  return [`bench:${tag}:*`, `bench:${tag}#*`, `k-${tag}-*`, `chk-${tag}-*`];
}

export interface Services {
  redisUrl: string;
  databaseUrl: string;
}

/** Fail early, with the address, when Redis or PostgreSQL cannot be reached. */
export async function checkServices(services: Services): Promise<void> {
  const redis = new Redis(services.redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(
      `Redis is not reachable at ${services.redisUrl} (set REDIS_URL): ${(error as Error).message}`,
      { cause: error },
    );
  } finally {
    redis.disconnect();
  }
  const client = new pg.Client({ connectionString: services.databaseUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${services.databaseUrl} (set DATABASE_URL): ${(error as Error).message}`,
      { cause: error },
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** Remove the Redis keys, PostgreSQL table and SQLite files of one case run. */
export async function cleanup(tag: string, services: Services, sqlitePath: string): Promise<void> {
  const redis = new Redis(services.redisUrl, { lazyConnect: true });
  await redis.connect();
  try {
    for (const pattern of redisPatterns(tag)) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
  const client = new pg.Client({ connectionString: services.databaseUrl });
  await client.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS ${pgTable(tag)}`);
  } finally {
    await client.end();
  }
  for (const suffix of ['', '-wal', '-shm', '-journal']) await rm(sqlitePath + suffix, { force: true });
}
