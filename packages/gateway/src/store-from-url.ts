/**
 * Opening the store a `--store` value names. The drivers are imported only for the store asked for,
 * so a gateway on SQLite never loads ioredis or pg, and one on Redis or PostgreSQL never loads
 * node:sqlite (missing below Node 22.13, and an experimental warning on Node 22): `oncely --help`
 * and `oncely keys` on another store run without it. Stores take connected clients (DESIGN §1): the
 * client is created here, and closed here after the store.
 */

import { memoryStore, type Store } from '@oncely/core';
import type { StoreSpec } from './store-spec.ts';

/** An open store and everything opened for it. */
export interface OpenedStore {
  readonly store: Store;
  readonly spec: StoreSpec;
  /**
   * The client the store was given (ioredis `Redis`, pg `Pool`), or the store itself for the
   * embedded ones: `oncely keys` reads records through it.
   */
  readonly client: unknown;
  /** Close the store, then its client. */
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** Create the PostgreSQL table if it is missing (`store.migrate()`). @default true */
  migrate?: boolean;
  /** Connection errors the drivers report in the background (they would otherwise go to the console or crash). */
  onError?: (error: Error) => void;
  /** How long a connection attempt or a command may take before it fails. @default 5_000 */
  timeoutMs?: number;
  /**
   * Redis: open a second connection in subscriber mode, so requests waiting for a duplicate
   * (`--concurrency wait`) hear of completions in other gateways at once instead of at their next
   * poll. @default false
   */
  subscribe?: boolean;
}

/**
 * Open the store of a parsed `--store` value.
 * @example
 * const { store, close } = await openStore(parseStoreSpec('sqlite:./oncely.db'));
 */
export async function openStore(spec: StoreSpec, options: OpenStoreOptions = {}): Promise<OpenedStore> {
  const onError = options.onError ?? ((): void => {});
  const timeoutMs = options.timeoutMs ?? 5_000;
  switch (spec.kind) {
    case 'memory': {
      const store = memoryStore();
      return { store, spec, client: store, close: () => store.close() };
    }
    case 'sqlite': {
      const { sqliteStore } = await import('@oncely/sqlite');
      const store = sqliteStore({ database: spec.path });
      return { store, spec, client: store, close: () => store.close() };
    }
    case 'redis': {
      const [{ Redis }, { redisStore }] = await Promise.all([import('ioredis'), import('@oncely/redis')]);
      const client = new Redis(spec.url, {
        // Fail a command after one reconnection attempt instead of queueing it for long: the engine
        // turns a failed acquire into a quick 503 (fail closed), not a request that hangs.
        maxRetriesPerRequest: 1,
        connectTimeout: timeoutMs,
        commandTimeout: timeoutMs,
      });
      // Without a listener ioredis prints every connection error to the console.
      client.on('error', onError);
      // Subscriber mode takes a connection of its own; without commandTimeout, which would cut the
      // subscription itself.
      const subscriber = options.subscribe
        ? new Redis(spec.url, { maxRetriesPerRequest: 1, connectTimeout: timeoutMs })
        : undefined;
      subscriber?.on('error', onError);
      const store = redisStore({
        client,
        ...(spec.prefix === undefined ? {} : { prefix: spec.prefix }),
        ...(subscriber ? { subscriber } : {}),
      });
      return {
        store,
        spec,
        client,
        close: async () => {
          await store.close();
          subscriber?.disconnect();
          client.disconnect();
        },
      };
    }
    case 'postgres': {
      const [{ default: pg }, { postgresStore }] = await Promise.all([
        import('pg'),
        import('@oncely/postgres'),
      ]);
      const pool = new pg.Pool({ connectionString: spec.url, connectionTimeoutMillis: timeoutMs });
      // An idle connection that breaks is reported here; without a listener it would crash the process.
      pool.on('error', onError);
      const store = postgresStore({
        pool,
        ...(spec.table === undefined ? {} : { table: spec.table }),
        ...(spec.namespace === undefined ? {} : { namespace: spec.namespace }),
      });
      const close = async (): Promise<void> => {
        await store.close();
        await pool.end();
      };
      if (options.migrate ?? true) {
        try {
          await store.migrate();
        } catch (error) {
          await close();
          throw error;
        }
      }
      return { store, spec, client: pool, close };
    }
  }
}
