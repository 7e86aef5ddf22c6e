/**
 * The inbox table's name, validated once and quoted for SQL. Identifiers cannot be bound as query
 * parameters, so they are spliced into the statements: only names that match a strict pattern are
 * accepted, and they are always double-quoted, so nothing a caller passes can change a statement.
 */

/** A validated table name and the SQL spellings derived from it. */
export interface TableName {
  /** As configured, e.g. `oncely_inbox` or `billing.oncely_inbox`. */
  readonly display: string;
  /** Quoted (and schema-qualified when configured), for statements: `"billing"."oncely_inbox"`. */
  readonly sql: string;
  /** The retention index's name, unquoted (indexes always live in their table's schema). */
  readonly receivedIndex: string;
}

// Lower case only: PostgreSQL folds unquoted names to lower case, so a mixed-case name would have to
// be quoted by everyone who queries the table by hand. 51 characters leave room for the index suffix
// within PostgreSQL's 63-byte identifier limit (longer names are silently truncated).
const TABLE = /^[a-z_][a-z0-9_]{0,50}$/;
const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;
const INDEX_SUFFIX = '_received_at';

/** The parsed name, or a sentence saying what is wrong with it. */
export function parseTableName(value: unknown): TableName | string {
  if (typeof value !== 'string') return 'must be a string';
  const parts = value.split('.');
  if (parts.length > 2) return 'may be qualified by one schema at most ("schema.table")';
  const name = parts.at(-1)!;
  const schema = parts.length === 2 ? parts[0]! : undefined;
  if (!TABLE.test(name)) {
    return `must match ${TABLE} (lower-case letters, digits, underscore; at most 51 characters)`;
  }
  if (schema !== undefined) {
    if (!SCHEMA.test(schema)) return `schema must match ${SCHEMA} (lower-case letters, digits, underscore)`;
    if (schema.startsWith('pg_')) return 'schema must not start with "pg_" (reserved by PostgreSQL)';
  }
  return {
    display: value,
    sql: schema === undefined ? `"${name}"` : `"${schema}"."${name}"`,
    receivedIndex: `${name}${INDEX_SUFFIX}`,
  };
}
