/**
 * The outbox table and its migration. The DDL is exported (`outboxSchema`) for teams that apply
 * migrations with their own tool; `outbox.migrate(pool)` applies the same DDL itself, safely from many
 * processes at once.
 */
import { migrationStatement as sharedMigration } from '@oncely/core/internal';
import type { TableName } from './table-name.ts';

/**
 * The table, as a plain `CREATE TABLE IF NOT EXISTS`.
 *
 * - `seq` orders the messages of one key: the relay publishes a key's messages in `seq` order, one at
 *   a time. `add()` serialises writers per key so that, per key, `seq` order is commit order.
 * - `id` is the message's identity on the broker and in consumers' inboxes, fixed at `add()`.
 * - `state`: `pending` until the broker confirmed it, then `published`; `dead` once it failed
 *   `maxFailures` times (it then holds its key's later messages back until requeued or discarded).
 * - `claim_token` / `claimed_until`: the lease of the relay publishing it; every write of a relay is
 *   fenced by its token, and a lapsed lease is what lets another relay take over after a crash.
 * - `attempts` counts claims; `failures` counts only what was this message's own fault (the broker
 *   refused it, or a relay died holding it), which is what the poison limit looks at.
 * - Times are the database's (`now()`): relays on many hosts compare leases on one clock.
 * - `payload` is `jsonb`: validated at `add()` (so a bad payload fails your transaction, not the
 *   relay), queryable when an operator looks for an order's messages, and serialised the same way on
 *   every republish. Key order and insignificant whitespace are not kept (JSON does not define them).
 */
export function tableDdl(table: TableName): string {
  return `CREATE TABLE IF NOT EXISTS ${table.sql} (
  seq             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  created_at      timestamptz NOT NULL DEFAULT now(),
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  claimed_until   timestamptz,
  published_at    timestamptz,
  id              uuid        NOT NULL UNIQUE,
  claim_token     uuid,
  attempts        integer     NOT NULL DEFAULT 0,
  failures        integer     NOT NULL DEFAULT 0,
  state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'published', 'dead')),
  topic           text        NOT NULL,
  key             text        NOT NULL,
  type            text        NOT NULL,
  headers         jsonb       NOT NULL DEFAULT '{}',
  payload         jsonb       NOT NULL,
  last_error      text
);`;
}

/**
 * The indexes, each partial so it holds only the rows its reader looks at:
 * - `pending`: the relay's claim walks pending rows in `seq` order;
 * - `key`: the head (oldest unpublished message) of each key, walked one probe per key by the claim
 *   (in the "C" collation: byte order, the same on every database, and what the walk compares with);
 * - `published`: the retention cleanup finds old published rows without reading the rest;
 * - `dead`: listing dead messages and counting them for the metric.
 */
export function indexDdl(table: TableName): Array<{ name: string; create: string }> {
  return [
    { name: table.index('pending'), create: `(seq) WHERE state = 'pending'` },
    { name: table.index('key'), create: `(key COLLATE "C", seq) WHERE state <> 'published'` },
    { name: table.index('published'), create: `(published_at) WHERE state = 'published'` },
    { name: table.index('dead'), create: `(seq) WHERE state = 'dead'` },
  ].map(({ name, create }) => ({
    name,
    // The index name is written unqualified after CREATE INDEX: it always lives in its table's schema.
    create: `CREATE INDEX ${name.split('.').at(-1)} ON ${table.sql} ${create};`,
  }));
}

/** The DDL for your own migration tool: the same table and indexes `migrate()` creates. */
export function schemaSql(table: TableName): string {
  const indexes = indexDdl(table).map(({ create }) =>
    create.replace('CREATE INDEX', 'CREATE INDEX IF NOT EXISTS'),
  );
  return `${tableDdl(table)}\n${indexes.join('\n')}\n`;
}

/** `migrate()`'s one statement: table and indexes when missing (core's `migrationStatement`). */
export function migrationStatement(table: TableName): string {
  return sharedMigration({
    lock: 'oncely.outbox.migrate',
    createTable: tableDdl(table),
    indexes: indexDdl(table),
  });
}
