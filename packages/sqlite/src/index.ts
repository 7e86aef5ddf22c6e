/**
 * @oncely/sqlite: the embedded Oncely store on `node:sqlite`. Durable across restarts, safe for several
 * processes on one host, no native build and no dependency.
 */
export { SQLITE_DEFAULTS, type SqliteStore, type SqliteStoreOptions, sqliteStore } from './sqlite-store.ts';
