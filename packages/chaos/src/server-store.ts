/**
 * Where a chaos run keeps its records, as the server processes are told it (JSON in argv) and as the
 * test process opens it for the final check. Every run has its own: a SQLite file in a temp dir, a
 * Redis prefix, a PostgreSQL table and namespace.
 */
import type { Store } from '@oncely/core';
import { postgresStore } from '@oncely/postgres';
import { redisStore } from '@oncely/redis';
import { sqliteStore } from '@oncely/sqlite';
import { Redis } from 'ioredis';
import pg from 'pg';

export type StoreConfig =
  | { kind: 'sqlite'; path: string }
  | { kind: 'redis'; url: string; prefix: string }
  | { kind: 'postgres'; url: string; table: string; namespace: string };

/** The gateway's `--store` value for the same store. */
export function gatewayStoreSpec(config: StoreConfig): string {
  switch (config.kind) {
    case 'sqlite':
      return `sqlite:${config.path}`;
    case 'redis': {
      const url = new URL(config.url);
      url.searchParams.set('prefix', config.prefix);
      return url.href;
    }
    case 'postgres': {
      const url = new URL(config.url);
      url.searchParams.set('table', config.table);
      url.searchParams.set('namespace', config.namespace);
      return url.href;
    }
  }
}

export interface OpenedStore {
  store: Store;
  close(): Promise<void>;
}

/** Open the store in a server process: clients created here, closed with the store. */
export async function openServerStore(config: StoreConfig): Promise<OpenedStore> {
  switch (config.kind) {
    case 'sqlite': {
      const store = sqliteStore({ database: config.path });
      return { store, close: () => store.close() };
    }
    case 'redis': {
      const client = new Redis(config.url, { maxRetriesPerRequest: 1, connectTimeout: 5_000 });
      client.on('error', () => {});
      const store = redisStore({ client, prefix: config.prefix });
      return {
        store,
        close: async () => {
          await store.close();
          client.disconnect();
        },
      };
    }
    case 'postgres': {
      const pool = new pg.Pool({ connectionString: config.url, max: 10, connectionTimeoutMillis: 5_000 });
      pool.on('error', () => {});
      const store = postgresStore({ pool, table: config.table, namespace: config.namespace });
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
