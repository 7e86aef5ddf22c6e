/** Oncely's four stores, each built the way its README shows, isolated per case run by `tag`. */
// Each store's modules are imported when that store is opened: a server loads only its own.
import { memoryStore, type Store } from '@oncely/core';
import type { ServerSpec } from './spec.ts';

export interface OpenedStore {
  store: Store;
  close(): Promise<void>;
}

/** Table name for a case run: the parent drops the same name afterwards. */
export function pgTable(tag: string): string {
  return `bench_${tag.replace(/[^a-z0-9]/gi, '_').toLowerCase()}`;
}

/** Redis key prefix for a case run: the parent deletes `<prefix>*` afterwards. */
export function redisPrefix(tag: string): string {
  return `bench:${tag}:`;
}

export async function openStore(spec: ServerSpec): Promise<OpenedStore> {
  switch (spec.store ?? 'memory') {
    case 'memory':
      return { store: memoryStore(), close: async () => {} };
    case 'sqlite': {
      if (!spec.sqlitePath) throw new Error('sqlite needs sqlitePath');
      const { sqliteStore } = await import('@oncely/sqlite');
      const store = sqliteStore({ database: spec.sqlitePath });
      return { store, close: () => store.close() };
    }
    case 'redis': {
      const [{ redisStore }, { Redis }] = await Promise.all([import('@oncely/redis'), import('ioredis')]);
      const client = new Redis(spec.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await client.connect();
      const store = redisStore({ client, prefix: redisPrefix(spec.tag) });
      return {
        store,
        close: async () => {
          await store.close();
          client.disconnect();
        },
      };
    }
    case 'postgres': {
      const [{ postgresStore }, { default: pg }] = await Promise.all([
        import('@oncely/postgres'),
        import('pg'),
      ]);
      // 20 connections: the README's example; with 50 load connections the pool is what queues.
      const pool = new pg.Pool({ connectionString: spec.databaseUrl, max: 20 });
      const store = postgresStore({ pool, table: pgTable(spec.tag) });
      await store.migrate();
      return {
        store,
        close: async () => {
          await store.close();
          await pool.end();
        },
      };
    }
  }
}
