/**
 * @oncely/core/internal: pieces the sibling packages share that are not part of the public API
 * (no semver promise; import them only from `@oncely/*` packages).
 */

export { type MigrationInput, migrationStatement } from './migration.ts';
export type { PgPool, PgPoolClient, PgQueryable, PgQueryResult, PoolClientOf } from './pg-types.ts';
export { parseSqlTableName, type SqlTableName } from './sql-table-name.ts';
