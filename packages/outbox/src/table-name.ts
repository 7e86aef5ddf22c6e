/** The outbox table's name: core's one SQL table-name rule, with the indexes the migration creates. */
import { parseSqlTableName, type SqlTableName } from '@oncely/core/internal';

/** The indexes the migration creates, by suffix; the longest one bounds the table name's length. */
export type IndexSuffix = 'pending' | 'key' | 'published' | 'dead';

/** A validated table name; `index('pending')` → `"billing"."oncely_outbox_pending"`. */
export interface TableName extends SqlTableName {
  index(suffix: IndexSuffix): string;
}

/** The parsed name, or a sentence saying what is wrong with it. 52 characters leave room for `_published`. */
export function parseTableName(value: unknown): TableName | string {
  return parseSqlTableName(value, { maxLength: 52 });
}
