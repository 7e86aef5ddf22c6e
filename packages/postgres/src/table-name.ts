/** The records table's name: core's one SQL table-name rule, and the index this store creates. */
import { parseSqlTableName, type SqlTableName } from '@oncely/core/internal';

/** A validated table name and the SQL spellings derived from it. */
export interface TableName extends SqlTableName {
  /** The sweeper's index name, unquoted (indexes always live in their table's schema). */
  readonly expiresIndex: string;
}

/** The parsed name, or a sentence saying what is wrong with it. 52 characters leave room for `_expires_at`. */
export function parseTableName(value: unknown): TableName | string {
  const parsed = parseSqlTableName(value, { maxLength: 52 });
  return typeof parsed === 'string' ? parsed : { ...parsed, expiresIndex: parsed.indexName('expires_at') };
}
