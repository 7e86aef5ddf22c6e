/**
 * A PostgreSQL table name from an option, validated once and quoted for SQL, for every package that
 * keeps a table of its own (the store, the inbox, the outbox, sagas). Identifiers cannot be bound as
 * query parameters, so they are spliced into statements: only names that match a strict pattern are
 * accepted, and they are always double-quoted, so nothing a caller passes can change a statement.
 */

/** A validated table name and the SQL spellings derived from it. */
export interface SqlTableName {
  /** As configured, e.g. `oncely_records` or `billing.oncely_records`. */
  readonly display: string;
  /** Quoted (and schema-qualified when configured), for statements: `"billing"."oncely_records"`. */
  readonly sql: string;
  /** The name of an index of this table, unquoted: `indexName('expires_at')` → `oncely_records_expires_at`. */
  indexName(suffix: string): string;
  /** The same, quoted and in the table's schema: `"billing"."oncely_records_expires_at"`. */
  index(suffix: string): string;
}

const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The parsed name, or a sentence saying what is wrong with it. Lower case only: PostgreSQL folds
 * unquoted names to lower case, so a mixed-case name would have to be quoted by everyone who ever
 * queries the table by hand. `maxLength` leaves room for the table's longest index suffix within
 * PostgreSQL's 63-byte identifier limit (longer names are silently truncated, and two truncated
 * index names could collide).
 */
export function parseSqlTableName(value: unknown, options: { maxLength: number }): SqlTableName | string {
  const table = new RegExp(`^[a-z_][a-z0-9_]{0,${options.maxLength - 1}}$`);
  if (typeof value !== 'string') return 'must be a string';
  const parts = value.split('.');
  if (parts.length > 2) return 'may be qualified by one schema at most ("schema.table")';
  const name = parts.at(-1)!;
  const schema = parts.length === 2 ? parts[0]! : undefined;
  if (!table.test(name)) {
    return `must match ${table} (lower-case letters, digits, underscore; at most ${options.maxLength} characters)`;
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
    indexName: (suffix) => `${name}_${suffix}`,
    index: (suffix) => qualify(`${name}_${suffix}`),
  };
}
