/**
 * The four runs of the chaos test, each on an isolated store of its own on this machine's real
 * servers (test-stores makes the connections, and fails loudly when a server is unreachable):
 *
 * - `sqlite`, `redis`, `postgres`: an `oncely proxy` gateway process and a Fastify adapter process
 *   share the store and the lease, in front of the counting upstream.
 * - `postgres-tx`: two processes of a Fastify app in PostgreSQL transactional mode, whose work is a
 *   business row written in the transaction that completes the key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RecordState, recordId, type Store } from '@oncely/core';
import { postgresStore } from '@oncely/postgres';
import { redisStore } from '@oncely/redis';
import { sqliteStore } from '@oncely/sqlite';
import {
  connectPostgres,
  connectRedis,
  DATABASE_URL,
  deleteRedisKeys,
  REDIS_URL,
  unique,
} from '@oncely/test-stores';
import type { AdapterConfig } from './adapter-server.ts';
import { ONCELY_BIN, type ServerCommand } from './server-process.ts';
import { gatewayStoreSpec, type StoreConfig } from './server-store.ts';
import type { TransactionalConfig } from './transactional-server.ts';

export const SCENARIOS = ['sqlite', 'redis', 'postgres', 'postgres-tx'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

const ADAPTER_SERVER = join(import.meta.dirname, 'adapter-server.ts');
const TRANSACTIONAL_SERVER = join(import.meta.dirname, 'transactional-server.ts');

export interface ScenarioSettings {
  leaseMs: number;
  /** Transactional mode: how long the work keeps its transaction open after the INSERT. */
  workDelayMs: [number, number];
}

export interface Scenario {
  name: ScenarioName;
  /** True when the work is a business row in the key's transaction, not a call to the counting upstream. */
  transactional: boolean;
  /** The two server processes; `upstream` is the counting upstream's URL (absent in transactional mode). */
  commands(upstream: string | undefined): ServerCommand[];
  /** The state of each key's record, read through the store from this process. */
  records(keys: readonly string[]): Promise<Map<string, RecordState | null>>;
  /** Transactional mode: the `exec` of each business row, per key. */
  rows?(): Promise<Map<string, string[]>>;
  /** Delete this run's records, tables and files. */
  cleanup(): Promise<void>;
}

/**
 * Scope '' is what both servers give the engine: the gateway without `--scope-header` (see
 * packages/gateway/src/scope.ts), the plugin without `scope`, the transactional app explicitly.
 */
async function readRecords(store: Store, keys: readonly string[]): Promise<Map<string, RecordState | null>> {
  const states = new Map<string, RecordState | null>();
  for (const key of keys) {
    const record = await store.get({ id: recordId('', key), now: Date.now() });
    states.set(key, record?.state ?? null);
  }
  return states;
}

function gatewayAndAdapter(store: StoreConfig, settings: ScenarioSettings) {
  return (upstream: string | undefined): ServerCommand[] => {
    if (upstream === undefined) throw new Error('the gateway and the adapter need the counting upstream');
    const adapter: AdapterConfig = { store, leaseMs: settings.leaseMs, upstream };
    return [
      {
        role: 'gateway',
        args: [
          ONCELY_BIN,
          'proxy',
          '--upstream',
          upstream,
          '--host',
          '127.0.0.1',
          '--port',
          '0',
          '--store',
          gatewayStoreSpec(store),
          '--lease',
          `${settings.leaseMs}ms`,
          '--upstream-timeout',
          '10s',
        ],
      },
      { role: 'adapter', args: [ADAPTER_SERVER, JSON.stringify(adapter)] },
    ];
  };
}

export async function openScenario(name: ScenarioName, settings: ScenarioSettings): Promise<Scenario> {
  switch (name) {
    case 'sqlite': {
      const dir = mkdtempSync(join(tmpdir(), 'oncely-chaos-'));
      const store: StoreConfig = { kind: 'sqlite', path: join(dir, 'oncely.db') };
      return {
        name,
        transactional: false,
        commands: gatewayAndAdapter(store, settings),
        records: async (keys) => {
          const opened = sqliteStore({ database: store.path, sweepIntervalMs: 0 });
          try {
            return await readRecords(opened, keys);
          } finally {
            await opened.close();
          }
        },
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    }
    case 'redis': {
      const client = await connectRedis();
      const store: StoreConfig = { kind: 'redis', url: REDIS_URL, prefix: `oncely-chaos:${unique()}:` };
      return {
        name,
        transactional: false,
        commands: gatewayAndAdapter(store, settings),
        records: (keys) => readRecords(redisStore({ client, prefix: store.prefix }), keys),
        cleanup: async () => {
          await deleteRedisKeys(client, store.prefix);
          client.disconnect();
        },
      };
    }
    case 'postgres':
    case 'postgres-tx': {
      const pool = await connectPostgres({ max: 2 });
      const store = {
        kind: 'postgres',
        url: DATABASE_URL,
        table: `oncely_chaos_${unique()}`,
        namespace: 'chaos',
      } as const;
      const payments = `oncely_chaos_payments_${unique()}`;
      const records = (keys: readonly string[]) =>
        readRecords(
          postgresStore({ pool, table: store.table, namespace: store.namespace, sweepIntervalMs: 0 }),
          keys,
        );
      const cleanup = async (): Promise<void> => {
        await pool.query(`DROP TABLE IF EXISTS ${store.table}`);
        await pool.query(`DROP TABLE IF EXISTS ${payments}`);
        await pool.end();
      };
      try {
        await postgresStore({ pool, table: store.table, sweepIntervalMs: 0 }).migrate();
        if (name === 'postgres') {
          return {
            name,
            transactional: false,
            commands: gatewayAndAdapter(store, settings),
            records,
            cleanup,
          };
        }
        // No unique constraint: a duplicate row must be possible, so the test can see there is none.
        await pool.query(
          `CREATE TABLE ${payments} (key text NOT NULL, exec text NOT NULL, pid integer NOT NULL)`,
        );
        const config: TransactionalConfig = {
          url: store.url,
          table: store.table,
          namespace: store.namespace,
          payments,
          leaseMs: settings.leaseMs,
          workDelayMs: settings.workDelayMs,
        };
        const args = [TRANSACTIONAL_SERVER, JSON.stringify(config)];
        return {
          name,
          transactional: true,
          commands: () => [
            { role: 'tx-a', args },
            { role: 'tx-b', args },
          ],
          records,
          // The whole table: it is this run's own, and a row for a key never sent would be a finding too.
          rows: async () => {
            const { rows } = await pool.query<{ key: string; exec: string }>(
              `SELECT key, exec FROM ${payments}`,
            );
            const byKey = new Map<string, string[]>();
            for (const row of rows) byKey.set(row.key, [...(byKey.get(row.key) ?? []), row.exec]);
            return byKey;
          },
          cleanup,
        };
      } catch (error) {
        await cleanup().catch(() => {});
        throw error;
      }
    }
  }
}
