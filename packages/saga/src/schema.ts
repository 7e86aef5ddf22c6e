/**
 * The saga state table. One row per saga instance, keyed by (saga, id); the row is the saga's whole
 * state, rewritten under `FOR UPDATE` by every transition, in the same transaction as the outbox row
 * of the next command. `deadline` is when the sweeper acts: a reply's timeout, or a retry's due time.
 */
import { parseSqlTableName, type SqlTableName } from '@oncely/core/internal';
import { invalid } from './definition.ts';

/** A validated, quoted table name; `index` is the sweeper's index, unquoted. */
export interface TableName extends Pick<SqlTableName, 'display' | 'sql'> {
  index: string;
}

/** Core's one SQL table-name rule; 51 characters leave room for `_due`, like the inbox's. */
export function tableName(value: unknown): TableName {
  const parsed = parseSqlTableName(value, { maxLength: 51 });
  if (typeof parsed === 'string') {
    throw invalid(
      `"table" must be [schema.]table of lower-case letters, digits and underscores, got ${String(value)}`,
    );
  }
  return { display: parsed.display, sql: parsed.sql, index: parsed.indexName('due') };
}

export function schemaSql(table: TableName): string {
  return `CREATE TABLE IF NOT EXISTS ${table.sql} (
  saga text NOT NULL,
  id text NOT NULL,
  status text NOT NULL,
  step integer NOT NULL,
  phase text NOT NULL,
  attempt integer NOT NULL,
  sends integer NOT NULL DEFAULT 0,
  waiting text,
  deadline bigint,
  data jsonb NOT NULL,
  results jsonb NOT NULL DEFAULT '{}',
  completed jsonb NOT NULL DEFAULT '[]',
  to_compensate jsonb NOT NULL DEFAULT '[]',
  compensated jsonb NOT NULL DEFAULT '[]',
  failure jsonb,
  history jsonb NOT NULL DEFAULT '[]',
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (saga, id)
);
CREATE INDEX IF NOT EXISTS "${table.index}" ON ${table.sql} (saga, deadline) WHERE deadline IS NOT NULL;`;
}

/** The DDL in one implicit transaction, serialised by an advisory lock (concurrent CREATE ... IF NOT EXISTS can collide). */
export function migrationSql(table: TableName): string {
  return `SELECT pg_advisory_xact_lock(hashtext('oncely_saga_migrate'));\n${schemaSql(table)}`;
}
