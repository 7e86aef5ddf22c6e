/**
 * The records table and its migration. The DDL is exported (`postgresSchema`) for teams that apply
 * migrations with their own tool; `store.migrate()` applies the same DDL itself, safely from many
 * processes at once.
 */
import { OncelyError } from '@oncely/core';
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

/**
 * One statement that creates the table and index if missing, safe to run from many processes at once.
 *
 * Concurrent `CREATE TABLE IF NOT EXISTS` is not safe on its own: two sessions can both find no table
 * and the second fails on a catalog unique index (`pg_type_typname_nsp_index`). A transaction-scoped
 * advisory lock makes migrations take turns; the DO block is one statement, hence one transaction,
 * so the lock is released by its commit or rollback, and the statement runs over any protocol.
 *
 * The index is created only when missing, not with `CREATE INDEX IF NOT EXISTS` alone: that takes a
 * SHARE lock on the table even when the index exists, which waits for every write in flight and
 * queues every new acquire behind it, on each deploy that runs `migrate()`.
 */
export function migrationStatement(table: TableName): string {
  // Identifiers are validated by parseTableName (no quotes, no dollar signs), so they are safe inside
  // the dollar-quoted body and in the string literals below.
  return `DO $oncely$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('oncely.migrate', 0));
  ${createTable(table).replaceAll('\n', '\n  ')}
  IF NOT EXISTS (
    SELECT 1 FROM pg_class
    WHERE relname = '${table.expiresIndex}'
      AND relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = '${table.sql}'::regclass)
  ) THEN
    ${createIndex(table, 'CREATE INDEX')}
  END IF;
END
$oncely$`;
}
