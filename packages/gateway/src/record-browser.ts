/**
 * Reading records without knowing their keys, for `oncely keys list` and `purge`. The store contract
 * has no enumeration (a store needs none to serve requests), so each store's own layout is read here:
 * the SQLite and PostgreSQL tables, the Redis hashes. Everything else goes through the contract.
 */

import { existsSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import type { RecordState } from '@oncely/core';
import { SQLITE_DEFAULTS, type SqliteStore } from '@oncely/sqlite';
import type { OpenedStore } from './store-from-url.ts';

/** One record, without its response bytes. */
export interface RecordSummary {
  id: string;
  state: RecordState;
  leaseUntil: number;
  expiresAt: number;
  /** The kept response's status; `null` while in progress or when the response was too large to keep. */
  status: number | null;
  bodyBytes: number | null;
}

export interface RecordBrowser {
  /** Live records (retention not over), the latest to expire first, at most `limit`. */
  list(options: { now: number; limit: number }): Promise<RecordSummary[]>;
  /** Delete the records whose retention ended; resolves with how many. */
  purgeExpired(now: number): Promise<number>;
}

/** This store cannot be listed: the message says why. */
export class NotSupportedError extends Error {
  override readonly name = 'NotSupportedError';
}

/** Minimal shapes of the clients, so this file loads neither ioredis nor pg. */
interface RedisLike {
  scan(cursor: string, ...args: Array<string | number>): Promise<[string, string[]]>;
  hmget(key: string, ...fields: string[]): Promise<Array<string | null>>;
  hstrlen(key: string, field: string): Promise<number>;
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
}
interface PgLike {
  query(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: Array<Record<string, unknown>>; rowCount: number | null }>;
}

/**
 * A browser for an opened store. Throws `NotSupportedError` for the memory store, which lives inside
 * one gateway process and is empty in any other.
 */
export function recordBrowser(opened: OpenedStore): RecordBrowser {
  const { spec } = opened;
  switch (spec.kind) {
    case 'memory':
      throw new NotSupportedError(
        'the memory store lives inside one gateway process: another process (this one) cannot see its records',
      );
    case 'sqlite':
      return sqliteBrowser(spec.path, opened.store as SqliteStore);
    case 'redis':
      return redisBrowser(opened.client as RedisLike, spec.prefix ?? 'oncely:');
    case 'postgres':
      return postgresBrowser(
        opened.client as PgLike,
        opened.store as unknown as { sweep(): Promise<number> },
        spec.table ?? 'oncely_records',
        spec.namespace ?? 'oncely',
      );
  }
}

/** The records table of @oncely/sqlite (`sqlite-store.ts`): one row per (namespace, id). */
function sqliteBrowser(path: string, store: SqliteStore): RecordBrowser {
  const { table, namespace } = SQLITE_DEFAULTS;
  return {
    async list({ now, limit }) {
      // Opening a missing file would create an empty database: say it is missing instead.
      if (!existsSync(path)) throw new NotSupportedError(`no SQLite store at ${path}`);
      const db = new DatabaseSync(path, { readOnly: true });
      try {
        const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
        if (exists === undefined) return [];
        const rows = db
          .prepare(
            `SELECT id, state, lease_until, expires_at, status, length(body) AS body_bytes FROM "${table}"
             WHERE namespace = ? AND expires_at > ? ORDER BY expires_at DESC LIMIT ?`,
          )
          .all(namespace, now, limit) as Array<Record<string, unknown>>;
        return rows.map(summary);
      } finally {
        db.close();
      }
    },
    async purgeExpired() {
      if (!existsSync(path)) throw new NotSupportedError(`no SQLite store at ${path}`);
      // The store's own sweep: batched deletes of this namespace's expired rows.
      return store.sweep();
    },
  };
}

/** The records table of @oncely/postgres (`schema.ts`), keyed by (namespace, id). */
function postgresBrowser(
  pool: PgLike,
  store: { sweep(): Promise<number> },
  table: string,
  namespace: string,
): RecordBrowser {
  // postgresStore() validated the name (lower-case letters, digits, underscore, one optional schema).
  const quoted = table
    .split('.')
    .map((part) => `"${part}"`)
    .join('.');
  return {
    async list({ now, limit }) {
      const { rows } = await pool.query(
        `SELECT id, state, lease_until, expires_at, status, octet_length(body) AS body_bytes FROM ${quoted}
         WHERE namespace = $1 AND expires_at > $2 ORDER BY expires_at DESC LIMIT $3`,
        [namespace, now, limit],
      );
      return rows.map(summary);
    },
    purgeExpired: () => store.sweep(),
  };
}

// Deletes a record only if its retention is still over when the script runs: between SCAN and here
// a request may have created a fresh record under the same id.
const DELETE_IF_EXPIRED = `local e = redis.call('HGET', KEYS[1], 'expiresAt')
if e and tonumber(e) <= tonumber(ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * The hashes of @oncely/redis (`lua-scripts.ts`): one per record at `<prefix>{<id>}`, with the fields
 * state, leaseUntil, expiresAt, status, body. Redis drops a record itself at its retention end
 * (PEXPIRE), so a purge finds little; it exists for records whose TTL and clock disagree.
 */
function redisBrowser(client: RedisLike, prefix: string): RecordBrowser {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}{*}`;
  const scan = async function* (): AsyncGenerator<string> {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      yield* keys;
    } while (cursor !== '0');
  };
  return {
    async list({ now, limit }) {
      const found: RecordSummary[] = [];
      // SCAN has no order: read every record, then keep the latest to expire.
      for await (const key of scan()) {
        const [state, leaseUntil, expiresAt, status] = await client.hmget(
          key,
          'state',
          'leaseUntil',
          'expiresAt',
          'status',
        );
        if (state !== 'in_progress' && state !== 'completed') continue;
        if (Number(expiresAt) <= now) continue;
        found.push({
          id: key.slice(prefix.length + 1, -1),
          state,
          leaseUntil: Number(leaseUntil),
          expiresAt: Number(expiresAt),
          status: status === null ? null : Number(status),
          bodyBytes: status === null ? null : await client.hstrlen(key, 'body'),
        });
      }
      return found.sort((a, b) => b.expiresAt - a.expiresAt).slice(0, limit);
    },
    async purgeExpired(now) {
      let deleted = 0;
      for await (const key of scan()) deleted += Number(await client.eval(DELETE_IF_EXPIRED, 1, key, now));
      return deleted;
    },
  };
}

function summary(row: Record<string, unknown>): RecordSummary {
  const status = row.status === null || row.status === undefined ? null : Number(row.status);
  return {
    id: String(row.id),
    state: row.state as RecordState,
    leaseUntil: Number(row.lease_until),
    expiresAt: Number(row.expires_at),
    status,
    bodyBytes: status === null || row.body_bytes === null ? null : Number(row.body_bytes),
  };
}
