/**
 * The saga state table. One row per saga instance, keyed by (saga, id); the row is the saga's whole
 * state, rewritten under `FOR UPDATE` by every transition, in the same transaction as the outbox row
 * of the next command. `deadline` is when the sweeper acts: a reply's timeout, or a retry's due time.
 */
import { invalid } from './definition.ts';

const TABLE = /^[a-z_][a-z0-9_]{0,50}$/;
const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;

/** A validated, quoted table name. */
export interface TableName {
  display: string;
  sql: string;
  index: string;
}

export function tableName(value: unknown): TableName {
  const parts = typeof value === 'string' ? value.split('.') : [];
  const name = parts.at(-1) ?? '';
  const schema = parts.length === 2 ? parts[0]! : undefined;
  if (
    parts.length < 1 ||
    parts.length > 2 ||
    !TABLE.test(name) ||
    (schema !== undefined && !SCHEMA.test(schema))
  ) {
    throw invalid(
      `"table" must be [schema.]table of lower-case letters, digits and underscores, got ${String(value)}`,
    );
  }
  return {
    display: value as string,
    sql: schema === undefined ? `"${name}"` : `"${schema}"."${name}"`,
    index: `${name}_due`,
  };
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
