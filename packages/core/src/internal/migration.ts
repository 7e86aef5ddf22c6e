/**
 * One statement that creates a table and its indexes when missing, safe to run from many processes
 * at once: the `migrate()` of every package that keeps a PostgreSQL table.
 *
 * Concurrent `CREATE TABLE IF NOT EXISTS` is not safe on its own: two sessions can both find no
 * table and the second fails on a catalog unique index (`pg_type_typname_nsp_index`). A
 * transaction-scoped advisory lock makes migrations take turns; the DO block is one statement, hence
 * one transaction, so the lock is released by its commit or rollback, and the statement runs over
 * any protocol. An index is created only when missing, not with `CREATE INDEX IF NOT EXISTS` alone:
 * that takes a SHARE lock on the table even when the index exists, which waits for every write in
 * flight and queues every new one behind it, on each deploy that runs `migrate()`.
 */
export interface MigrationInput {
  /** Names the advisory lock: migrations with the same name take turns. */
  lock: string;
  /** `CREATE TABLE IF NOT EXISTS …;` */
  createTable: string;
  /** Each index: its quoted, schema-qualified name (`SqlTableName.index`), and its `CREATE INDEX …;`. */
  indexes: ReadonlyArray<{ name: string; create: string }>;
}

/**
 * The `DO` statement. Identifiers must come validated (`parseSqlTableName`: no quotes, no dollar
 * signs), so they are safe inside the dollar-quoted body and in its string literals.
 */
export function migrationStatement({ lock, createTable, indexes }: MigrationInput): string {
  const ensureIndexes = indexes
    .map(({ name, create }) => `  IF to_regclass('${name}') IS NULL THEN\n    ${create}\n  END IF;`)
    .join('\n');
  return `DO $oncely$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('${lock}', 0));
  ${createTable.replaceAll('\n', '\n  ')}
${ensureIndexes}
END
$oncely$`;
}
