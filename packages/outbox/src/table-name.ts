/**
 * The outbox table's name, validated once and quoted for SQL. Identifiers cannot be bound as query
 * parameters, so they are spliced into the statements: only names that match a strict pattern are
 * accepted, and they are always double-quoted, so nothing a caller passes can change a statement.
 */

/** A validated table name and the SQL spellings derived from it. */
export interface TableName {
  /** As configured, e.g. `oncely_outbox` or `billing.oncely_outbox`. */
  readonly display: string;
  /** Quoted (and schema-qualified when configured), for statements: `"billing"."oncely_outbox"`. */
  readonly sql: string;
  /** An index of this table, quoted and in the table's schema: `index('pending')` → `"billing"."oncely_outbox_pending"`. */
  index(suffix: IndexSuffix): string;
}

/** The indexes the migration creates, by suffix; the longest one bounds the table name's length. */
export type IndexSuffix = 'pending' | 'key' | 'published' | 'dead';

// Lower case only: PostgreSQL folds unquoted names to lower case, so a mixed-case name would have to
// be quoted by everyone who ever queries the table by hand. 52 characters leave room for the longest
// index suffix (`_published`) within PostgreSQL's 63-byte identifier limit (longer names are silently
// truncated, and two truncated index names could collide).
const TABLE = /^[a-z_][a-z0-9_]{0,51}$/;
const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;

/** The parsed name, or a sentence saying what is wrong with it. */
export function parseTableName(value: unknown): TableName | string {
  if (typeof value !== 'string') return 'must be a string';
  const parts = value.split('.');
  if (parts.length > 2) return 'may be qualified by one schema at most ("schema.table")';
  const name = parts.at(-1)!;
  const schema = parts.length === 2 ? parts[0]! : undefined;
  if (!TABLE.test(name)) {
    return `must match ${TABLE} (lower-case letters, digits, underscore; at most 52 characters)`;
  }
  if (schema !== undefined) {
    if (!SCHEMA.test(schema)) return `schema must match ${SCHEMA} (lower-case letters, digits, underscore)`;
    if (schema.startsWith('pg_')) return 'schema must not start with "pg_" (reserved by PostgreSQL)';
  }
  const qualify = (relation: string): string =>
    schema === undefined ? `"${relation}"` : `"${schema}"."${relation}"`;
  return {
    display: value,
    sql: qualify(name),
    index: (suffix) => qualify(`${name}_${suffix}`),
  };
}
