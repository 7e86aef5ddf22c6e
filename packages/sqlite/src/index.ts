/**
 * @oncely/sqlite: the embedded Oncely store on `node:sqlite`. Durable across restarts, safe for several
 * processes on one host, no native build and no dependency.
 */

// The Node versions this package supports (package.json `engines`): `node:sqlite` is missing below
// 22.13, and 22.13 to 22.15 (and 23) lack `DatabaseSync#isTransaction`, without which the store cannot
// tell whether a failed step left a transaction open to roll back. Say so in one line at import rather
// than fail later, or worse, leave a transaction open. Checked without opening a database.
// sqlite-store.ts loads `node:sqlite` only when a store is made, so this check runs on every Node
// (a top-level `await import()` would break `require('@oncely/sqlite')` from CommonJS).
const sqlite = process.getBuiltinModule?.('node:sqlite');
if (sqlite === undefined || !('isTransaction' in new sqlite.DatabaseSync(':memory:', { open: false }))) {
  throw new Error(
    `@oncely/sqlite needs Node.js ^22.16.0 || >=24 for node:sqlite (this is ${process.version})`,
  );
}

export { SQLITE_DEFAULTS, type SqliteStore, type SqliteStoreOptions, sqliteStore } from './sqlite-store.ts';
