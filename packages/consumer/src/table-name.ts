/** The inbox table's name: core's one SQL table-name rule, and the index the inbox creates. */
import { parseSqlTableName, type SqlTableName } from '@oncely/core/internal';

/** A validated table name and the SQL spellings derived from it. */
export interface TableName extends SqlTableName {
  /** The retention index's name, unquoted (indexes always live in their table's schema). */
  readonly receivedIndex: string;
}

/** The parsed name, or a sentence saying what is wrong with it. 51 characters leave room for `_received_at`. */
export function parseTableName(value: unknown): TableName | string {
  const parsed = parseSqlTableName(value, { maxLength: 51 });
  return typeof parsed === 'string' ? parsed : { ...parsed, receivedIndex: parsed.indexName('received_at') };
}
