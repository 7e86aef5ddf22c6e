/**
 * The records table and its migration. The DDL is exported (`postgresSchema`) for teams that apply
 * migrations with their own tool; `store.migrate()` applies the same DDL itself, safely from many
 * processes at once.
 */

import { OncelyError } from '@oncely/core';
import { migrationStatement as sharedMigration } from '@oncely/core/internal';
import { POSTGRES_DEFAULTS } from './store-options.ts';
import { parseTableName, type TableName } from './table-name.ts';

/**
 * The table and index, as plain `CREATE ... IF NOT EXISTS` statements.
 *
 * Fixed-width columns come first, so no alignment padding sits between them. Times are epoch ms
 * (`bigint`) from the engine's clock, never the server's. Headers are `json` rather than `jsonb`:
 * `json` keeps the text as written (pair order, repeated names) and accepts every string the engine
 * can hold, where `jsonb` rejects `\u0000` and lone surrogates. The body is `bytea`: exact bytes.
 */
export function tableDdl(table: TableName): string {
  return `${createTable(table)}\n${createIndex(table, 'CREATE INDEX IF NOT EXISTS')}\n`;
}

function createTable(table: TableName): string {
  return `CREATE TABLE IF NOT EXISTS ${table.sql} (
  lease_until bigint  NOT NULL,
  expires_at  bigint  NOT NULL,
  attempt     integer NOT NULL DEFAULT 1,
  status      integer,
  namespace   text    NOT NULL,
  id          text    NOT NULL,
  state       text    NOT NULL CHECK (state IN ('in_progress', 'completed')),
  fingerprint text    NOT NULL,
  token       text    NOT NULL,
  headers     json,
  body        bytea,
  PRIMARY KEY (namespace, id)
);`;
}

// The sweeper's index: it finds a namespace's expired rows without reading the live ones.
function createIndex(table: TableName, create: string): string {
  return `${create} "${table.expiresIndex}" ON ${table.sql} (namespace, expires_at);`;
}

/**
 * The DDL of the records table, for your own migration tool (`store.migrate()` applies the same).
 * @example
 * await sql.unsafe(postgresSchema({ table: 'billing.oncely_records' }));
 */
export function postgresSchema(options: { table?: string } = {}): string {
  const table = parseTableName(options.table ?? POSTGRES_DEFAULTS.table);
  if (typeof table === 'string') {
    throw new OncelyError('ERR_ONCELY_INVALID_OPTION', `postgresSchema: "table" ${table}`);
  }
  return tableDdl(table);
}

/** `migrate()`'s one statement: table and sweeper index when missing (core's `migrationStatement`). */
export function migrationStatement(table: TableName): string {
  return sharedMigration({
    lock: 'oncely.migrate',
    createTable: createTable(table),
    indexes: [{ name: table.index('expires_at'), create: createIndex(table, 'CREATE INDEX') }],
  });
}
