/**
 * The inbox table, its migration and its statements. The DDL is exported (`inboxSchema`) for teams
 * that apply migrations with their own tool; `inbox().migrate()` applies the same DDL itself, safely
 * from many processes at once.
 */
import { migrationStatement as sharedMigration } from '@oncely/core/internal';
import type { TableName } from './table-name.ts';

/**
 * One row per (consumer, message) processed: the unique key is what serialises concurrent
 * deliveries of one message, and the row's existence is what makes a redelivery a duplicate.
 *
 * `received_at` is epoch ms from the inbox's clock (the retention sweep compares it with the same
 * clock), `bigint` first so no alignment padding sits before the text columns. The payload hash is
 * the hex sha256 of `payloadHash()`: enough to tell a redelivery from a reused id, and no payload
 * byte is kept (the payload may hold personal data; your own tables hold what you need).
 */
function createTable(table: TableName): string {
  return `CREATE TABLE IF NOT EXISTS ${table.sql} (
  received_at  bigint NOT NULL,
  consumer     text   NOT NULL,
  message_id   text   NOT NULL,
  payload_hash text   NOT NULL,
  PRIMARY KEY (consumer, message_id)
);`;
}

// The retention sweep's index: it finds a consumer's old rows without reading the recent ones.
function createIndex(table: TableName, create: string): string {
  return `${create} "${table.receivedIndex}" ON ${table.sql} (consumer, received_at);`;
}

/** The DDL, as plain `CREATE ... IF NOT EXISTS` statements. */
export function inboxDdl(table: TableName): string {
  return `${createTable(table)}\n${createIndex(table, 'CREATE INDEX IF NOT EXISTS')}\n`;
}

/**
 * `migrate()`'s one statement: table and retention index when missing (core's
 * `migrationStatement`), under the same advisory lock as `@oncely/postgres`'s migration.
 */
export function migrationStatement(table: TableName): string {
  return sharedMigration({
    lock: 'oncely.migrate',
    createTable: createTable(table),
    indexes: [{ name: table.index('received_at'), create: createIndex(table, 'CREATE INDEX') }],
  });
}

export interface InboxStatements {
  /** $1 consumer, $2 message id, $3 payload hash, $4 received at. The FIRST statement of every delivery. */
  insert: string;
  /** $1 consumer, $2 message id. */
  recorded: string;
  /** $1 consumer, $2 received before (epoch ms), $3 batch size. */
  sweep: string;
}

export function inboxStatements(table: TableName): InboxStatements {
  const t = table.sql;
  return {
    // Insert first, never check first: a SELECT-then-INSERT lets two deliveries both find nothing
    // and both process. With the insert first, the second delivery's INSERT meets the first's
    // uncommitted row on the unique key and waits for its transaction: if it commits, DO NOTHING
    // (0 rows: a duplicate); if it rolls back, the insert goes ahead and this delivery processes.
    insert: `INSERT INTO ${t} (consumer, message_id, payload_hash, received_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (consumer, message_id) DO NOTHING`,

    // After a conflict, in a statement of its own: its READ COMMITTED snapshot is taken after the
    // INSERT waited, so it sees the row that conflicted (a sub-select of the INSERT's own statement
    // might not: its snapshot can predate the commit the INSERT waited for).
    recorded: `SELECT payload_hash FROM ${t} WHERE consumer = $1 AND message_id = $2`,

    // One batch: lock up to $3 rows of this consumer past retention that nobody else holds, and
    // delete them. SKIP LOCKED lets every process sweep at once, splitting the rows instead of
    // queueing on each other.
    sweep: `WITH doomed AS (
  SELECT message_id FROM ${t} WHERE consumer = $1 AND received_at < $2 LIMIT $3 FOR UPDATE SKIP LOCKED
)
DELETE FROM ${t} AS r USING doomed
WHERE r.consumer = $1 AND r.message_id = doomed.message_id AND r.received_at < $2`,
  };
}
