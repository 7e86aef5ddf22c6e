import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  AcquireInput,
  AcquireResult,
  CompleteInput,
  ExtendInput,
  GetInput,
  IdempotencyRecord,
  ListInput,
  ListResult,
  PurgeExpiredInput,
  RecordState,
  RecordSummary,
  ReleaseInput,
  Store,
  StoredResponse,
  StoreHealth,
} from '@oncely/core';
import { OncelyError } from '@oncely/core';

export interface SqliteStoreOptions {
  /** A path (opened and later closed by the store) or an open `DatabaseSync` (left open by `close()`). */
  database: string | DatabaseSync;
  /** Records of different namespaces never see each other, even in one file. @default 'oncely' */
  namespace?: string;
  /** Table name, validated against `/^[A-Za-z_][A-Za-z0-9_]{0,62}$/`. @default 'oncely_records' */
  table?: string;
  /**
   * How long a call waits for another connection's write lock before failing with SQLITE_BUSY
   * ("database is locked"). The wait is asynchronous: the call is retried with short sleeps, and
   * the event loop keeps running meanwhile. 0 fails at once. @default 5000
   */
  busyTimeoutMs?: number;
  /** How often expired rows are deleted; 0 disables (expired rows are still never returned). @default 60_000 */
  sweepIntervalMs?: number;
  /** Rows deleted per sweep batch; the sweeper yields to the event loop between batches. @default 500 */
  sweepBatchSize?: number;
  /** Clock for the sweeper only; records get their times from the engine. @default Date.now */
  clock?: () => number;
}

/** A `Store` on SQLite, plus `sweep()` to delete expired rows now. */
export type SqliteStore = Store & {
  /** Delete every expired row of this namespace now (by `clock`), in batches; resolves with the number deleted. */
  sweep(): Promise<number>;
  /** Whether the write lock can be taken right now; `writable: false` while another connection holds it. */
  health(): Promise<StoreHealth>;
  /** One page of this namespace's live records, by id. */
  list(input: ListInput): Promise<ListResult>;
  /** Delete this namespace's expired rows (by the given `now`), in batches; resolves with how many. */
  purgeExpired(input: PurgeExpiredInput): Promise<number>;
};

/**
 * Every default of `sqliteStore()`, in one place.
 * @example
 * sqliteStore({ database: './oncely.db', busyTimeoutMs: 2 * SQLITE_DEFAULTS.busyTimeoutMs });
 */
export const SQLITE_DEFAULTS = Object.freeze({
  namespace: 'oncely',
  table: 'oncely_records',
  busyTimeoutMs: 5000,
  sweepIntervalMs: 60_000,
  sweepBatchSize: 500,
  // A wrapper rather than `Date.now` itself, so a test that mocks `Date` also moves the sweeper.
  clock: (): number => Date.now(),
});

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const OPTION_NAMES: ReadonlySet<string> = new Set<keyof SqliteStoreOptions>([
  'database',
  'namespace',
  'table',
  'busyTimeoutMs',
  'sweepIntervalMs',
  'sweepBatchSize',
  'clock',
]);
// setInterval takes a signed 32-bit count of milliseconds; busyTimeoutMs keeps the bound it had when
// it was SQLite's own busy timeout.
const MAX_MS = 2 ** 31 - 1;

// The primary result codes (the low byte of node:sqlite's `errcode`, an extended code) of "another
// connection holds a lock this statement needs": BUSY from another connection or process, LOCKED
// from a connection sharing this one's cache. Both leave nothing written: the statement is retried.
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
// Waits between attempts while the lock is taken: 1, 2, 4 … ms, then every 25 ms, each with jitter
// so that several processes waiting for one lock do not retry in step. The same scale as SQLite's own
// busy handler (1, 2, 5 … 25, 50, 100 ms), minus its long tail: a lock held for microseconds by another
// process's step is picked up within a few ms of its release.
const FIRST_BACKOFF_MS = 1;
const MAX_BACKOFF_MS = 25;
const LOCKED_DETAIL = 'the database is locked by another connection';

/** A row as the schema below stores it. */
interface RecordRow {
  state: RecordState;
  fingerprint: string;
  token: string;
  lease_until: number;
  expires_at: number;
  /** NULL while in progress, and for a completed record whose response was not kept. */
  status: number | null;
  /** JSON array of [name, value] pairs: keeps order and repeated names. */
  headers: string | null;
  body: Uint8Array | null;
}

/** One open connection and its statements, prepared once. */
interface Statements {
  db: DatabaseSync;
  select: StatementSync;
  insert: StatementSync;
  takeover: StatementSync;
  complete: StatementSync;
  extend: StatementSync;
  release: StatementSync;
  list: StatementSync;
  sweepBatch: StatementSync;
}

/**
 * The embedded store: durable across restarts, safe for several processes on one host (WAL,
 * `BEGIN IMMEDIATE`), with a periodic sweep of expired rows. No native build, no dependency.
 * @example
 * const oncely = createOncely({ store: sqliteStore({ database: './oncely.db' }) });
 */
export function sqliteStore(options: SqliteStoreOptions): SqliteStore {
  const config = validate(options);
  const { namespace, table, busyTimeoutMs, sweepIntervalMs, sweepBatchSize, clock } = config;
  const ownsDatabase = typeof config.database === 'string';

  let statements: Statements | undefined;
  let opening: Promise<Statements> | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let sweeping = 0;
  let closed = false;

  const closedError = (): Error =>
    new Error(`sqliteStore is closed (namespace "${namespace}", table "${table}")`);

  // node:sqlite is synchronous: a statement that waits inside SQLite for a lock (its busy_timeout)
  // blocks the whole event loop, so every request of this process and every lease renewal stalls
  // for as long as another process holds the write lock. So SQLite never waits here (busy_timeout 0:
  // a statement refused for a lock fails at once, having written nothing), and the waiting happens
  // in this loop instead: the step is run again after a short setTimeout, until busyTimeoutMs is
  // spent, then its SQLITE_BUSY error is thrown (a 503 from the engine). `step` is synchronous (one
  // statement, or one whole transaction that rolls itself back on failure), so an attempt still holds
  // the lock for microseconds and never interleaves with another step of this process. The first
  // attempt runs before this function returns. Deadlines use the monotonic clock, never `clock`.
  const retrying = async <T>(step: () => T): Promise<T> => {
    const deadline = performance.now() + busyTimeoutMs;
    let backoff = FIRST_BACKOFF_MS;
    for (;;) {
      try {
        return step();
      } catch (error) {
        const left = deadline - performance.now();
        if (!isBusy(error) || left <= 0) throw error;
        await sleep(Math.min(left, backoff * (0.5 + Math.random() / 2)));
        backoff = Math.min(2 * backoff, MAX_BACKOFF_MS);
        // close() while waiting ends the wait: the connection may be gone.
        if (closed) throw closedError();
      }
    }
  };

  /** The open connection, or undefined before the first call opened it. Throws once closed. */
  const current = (): Statements | undefined => {
    if (closed) throw closedError();
    return statements;
  };

  // Opened on first use, not in the constructor: building a store does no I/O, and a failure to
  // open (missing directory, locked file) reaches the caller as a rejected promise of a store call,
  // which the engine turns into a 503, instead of a throw at startup. A failed attempt is retried
  // from scratch by the next call; calls made while it runs share it.
  const open = (): Promise<Statements> => {
    opening ??= connect().finally(() => {
      opening = undefined;
    });
    return opening;
  };

  const connect = async (): Promise<Statements> => {
    const database =
      typeof config.database === 'string'
        ? new (nodeSqlite().DatabaseSync)(config.database)
        : config.database;
    let opened: Statements;
    try {
      // The schema needs the write lock when the table or its index is missing, and switching a
      // file to WAL needs it too: the same asynchronous wait as any write, not a synchronous one.
      // Every step of initialize() is idempotent, so an attempt refused half-way is run again whole.
      opened = await retrying(() => initialize(database, table));
      if (closed) throw closedError();
    } catch (error) {
      if (ownsDatabase && database.isOpen) database.close();
      throw error;
    }
    statements = opened;
    if (sweepIntervalMs > 0) {
      timer = setInterval(() => {
        // An overlapping tick is skipped, and a failed sweep is retried by the next tick. No
        // console output from library code: expired rows are never returned anyway, so a failed
        // sweep costs disk space, never correctness.
        if (sweeping === 0) sweep().catch(() => {});
      }, sweepIntervalMs);
      // The sweeper must never keep a process alive on its own.
      timer.unref();
    }
    return opened;
  };

  // The sweeper's work and `purgeExpired`: delete rows expired by `now`, at most `limit` of them.
  const purge = async (now: number, limit: number): Promise<number> => {
    const s = current() ?? (await open());
    sweeping++;
    try {
      let deleted = 0;
      for (;;) {
        // Each batch is one DELETE statement, so its own short autocommit transaction: acquires
        // from this and other processes get the write lock between batches. While another process
        // holds the lock, a batch waits like any write: asynchronously.
        const batch = Math.min(sweepBatchSize, limit - deleted);
        let changes: number;
        try {
          changes = Number(
            (await retrying(() => s.sweepBatch.run({ namespace, now, limit: batch }))).changes,
          );
        } catch (error) {
          // close() during a sweep ends it quietly, with what was deleted so far.
          if (closed) return deleted;
          throw error;
        }
        deleted += changes;
        if (changes < batch || deleted >= limit) return deleted;
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (closed) return deleted;
      }
    } finally {
      sweeping--;
    }
  };

  const sweep = (): Promise<number> => purge(clock(), Number.POSITIVE_INFINITY);

  return {
    name: 'sqlite',

    async acquire(input: AcquireInput): Promise<AcquireResult> {
      const s = current() ?? (await open());
      const key = { namespace, id: input.id };
      // A refused attempt rolled back and left nothing behind; the next one reads afresh.
      return retrying(() =>
        transaction(s.db, (): AcquireResult => {
          const row = s.select.get(key) as RecordRow | undefined;
          if (row === undefined || row.expires_at <= input.now) {
            // No record, or its retention ended: it is gone as if never written, whatever it held.
            s.insert.run({
              ...key,
              fingerprint: input.fingerprint,
              token: input.token,
              leaseUntil: input.leaseUntil,
              expiresAt: input.expiresAt,
            });
            return { acquired: true, takeover: false, record: fresh(input) };
          }
          // A crashed owner's work may be picked up by a retry of the same request only. A request
          // with another fingerprint never takes over: it gets the record and the engine answers 422.
          if (
            row.state === 'in_progress' &&
            row.lease_until <= input.now &&
            row.fingerprint === input.fingerprint
          ) {
            s.takeover.run({
              ...key,
              token: input.token,
              leaseUntil: input.leaseUntil,
              expiresAt: input.expiresAt,
            });
            return { acquired: true, takeover: true, record: fresh(input) };
          }
          return { acquired: false, record: toRecord(input.id, row) };
        }),
      );
    },

    async complete(input: CompleteInput): Promise<boolean> {
      const s = current() ?? (await open());
      // One UPDATE fenced by token and state: atomic on its own, no transaction needed.
      const response = input.response;
      const params = {
        namespace,
        id: input.id,
        token: input.token,
        expiresAt: input.expiresAt,
        status: response === null ? null : response.status,
        headers: response === null ? null : JSON.stringify(response.headers),
        body: response === null ? null : response.body,
      };
      return Number((await retrying(() => s.complete.run(params))).changes) > 0;
    },

    async extend(input: ExtendInput): Promise<boolean> {
      const s = current() ?? (await open());
      const params = { namespace, id: input.id, token: input.token, leaseUntil: input.leaseUntil };
      return Number((await retrying(() => s.extend.run(params))).changes) > 0;
    },

    async release(input: ReleaseInput): Promise<boolean> {
      const s = current() ?? (await open());
      const params = { namespace, id: input.id, token: input.token };
      return Number((await retrying(() => s.release.run(params))).changes) > 0;
    },

    async get(input: GetInput): Promise<IdempotencyRecord | null> {
      const s = current() ?? (await open());
      // In WAL mode a read needs no write lock, but it can still be refused for a moment (another
      // connection recovering the WAL index or opening the file): the same asynchronous wait.
      const row = (await retrying(() => s.select.get({ namespace, id: input.id }))) as RecordRow | undefined;
      // A row past its retention may linger until the sweeper reaches it; it is already gone.
      return row === undefined || row.expires_at <= input.now ? null : toRecord(input.id, row);
    },

    // By id within the namespace (its primary key), so a cursor is the last id of a page and holds
    // whatever is written meanwhile. One more row than the page is read to know whether there is more.
    async list(input: ListInput): Promise<ListResult> {
      const limit = pageLimit(input.limit);
      const s = current() ?? (await open());
      const params = { namespace, now: input.now, after: input.cursor ?? '', limit: limit + 1 };
      // A read, so no write lock in WAL; `retrying` only for a moment's refusal, as in `get`.
      const rows = (await retrying(() => s.list.all(params))) as unknown as SummaryRow[];
      const records = rows.slice(0, limit).map(toSummary);
      return rows.length > limit ? { records, cursor: records[records.length - 1]!.id } : { records };
    },

    purgeExpired: (input: PurgeExpiredInput) =>
      purge(input.now, input.limit === undefined ? Number.POSITIVE_INFINITY : pageLimit(input.limit)),

    sweep,

    // Takes the write lock without waiting, and gives it straight back: a BUSY answer means another
    // connection holds it now, and every write of this store would wait (up to busyTimeoutMs).
    async health(): Promise<StoreHealth> {
      const s = current() ?? (await open());
      try {
        s.db.exec('BEGIN IMMEDIATE');
      } catch (error) {
        if (isBusy(error)) return { writable: false, detail: LOCKED_DETAIL };
        throw error;
      }
      s.db.exec('ROLLBACK');
      return { writable: true };
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      // A database passed in belongs to the caller, who may still use it.
      if (ownsDatabase && statements?.db.isOpen) statements.db.close();
      statements = undefined;
    },
  };
}

// Runs a read-then-write step as one transaction. BEGIN IMMEDIATE takes the write lock before the
// read: with a plain (deferred) BEGIN, two processes could both read "no record", and the one that
// upgrades second could only fail (SQLITE_BUSY_SNAPSHOT: its snapshot is already stale). Taken up
// front, the lock is simply waited for (`retrying`, when BEGIN IMMEDIATE is refused) and the read
// sees the latest commit. node:sqlite is synchronous, so the transaction never spans an await: it is
// held for microseconds and never interleaves with another step of this process.
function transaction<T>(database: DatabaseSync, step: () => T): T {
  database.exec('BEGIN IMMEDIATE');
  try {
    const result = step();
    database.exec('COMMIT');
    return result;
  } catch (error) {
    // Only our own transaction is rolled back (BEGIN succeeded above), and a failing ROLLBACK must
    // not hide the error that caused it.
    if (database.isTransaction) {
      try {
        database.exec('ROLLBACK');
      } catch {}
    }
    throw error;
  }
}

/** True for an error that means "another connection holds a lock": retry later, nothing was written. */
function isBusy(error: unknown): boolean {
  const code = (error as { errcode?: unknown } | null)?.errcode;
  if (typeof code !== 'number') return false;
  const primary = code & 0xff;
  return primary === SQLITE_BUSY || primary === SQLITE_LOCKED;
}

/**
 * Pragmas, schema and statements of one connection. Safe to run from several processes at once, and
 * again after a failed attempt: every step is idempotent and its own autocommit statement.
 */
function initialize(db: DatabaseSync, table: string): Statements {
  // SQLite never waits for a lock on this connection: its wait would block the event loop (see
  // `retrying`). Set first, so that the pragmas and the schema below are refused at once too, and
  // also on a DatabaseSync passed in, whatever timeout it was opened with.
  db.exec('PRAGMA busy_timeout = 0');
  // WAL: readers never block the writer nor the writer readers, and several processes can share
  // the file. synchronous=NORMAL is durable against a process crash, and loses at most the last
  // transactions on power loss, never consistency; it avoids an fsync per step.
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  // The name is validated against TABLE_NAME, so quoting it is enough. The primary key leads with
  // the namespace, so every lookup is one index seek within one namespace; WITHOUT ROWID stores the
  // row in that index itself.
  const t = `"${table}"`;
  db.exec(`CREATE TABLE IF NOT EXISTS ${t} (
    namespace   TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('in_progress', 'completed')),
    fingerprint TEXT    NOT NULL,
    token       TEXT    NOT NULL,
    lease_until INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    status      INTEGER,
    headers     TEXT,
    body        BLOB,
    PRIMARY KEY (namespace, id)
  ) WITHOUT ROWID`);
  db.exec(`CREATE INDEX IF NOT EXISTS "${table}_expires_at" ON ${t} (namespace, expires_at)`);

  const owner = "namespace = :namespace AND id = :id AND token = :token AND state = 'in_progress'";
  return {
    db,
    select: db.prepare(
      `SELECT state, fingerprint, token, lease_until, expires_at, status, headers, body
       FROM ${t} WHERE namespace = :namespace AND id = :id`,
    ),
    // Replaces an expired row in place, including a completed one: its response is dropped.
    insert: db.prepare(
      `INSERT INTO ${t} (namespace, id, state, fingerprint, token, lease_until, expires_at, status, headers, body)
       VALUES (:namespace, :id, 'in_progress', :fingerprint, :token, :leaseUntil, :expiresAt, NULL, NULL, NULL)
       ON CONFLICT (namespace, id) DO UPDATE SET
         state = excluded.state, fingerprint = excluded.fingerprint, token = excluded.token,
         lease_until = excluded.lease_until, expires_at = excluded.expires_at,
         status = NULL, headers = NULL, body = NULL`,
    ),
    takeover: db.prepare(
      `UPDATE ${t} SET token = :token, lease_until = :leaseUntil, expires_at = :expiresAt
       WHERE namespace = :namespace AND id = :id`,
    ),
    complete: db.prepare(
      `UPDATE ${t} SET state = 'completed', expires_at = :expiresAt, status = :status, headers = :headers, body = :body
       WHERE ${owner}`,
    ),
    extend: db.prepare(`UPDATE ${t} SET lease_until = :leaseUntil WHERE ${owner}`),
    release: db.prepare(`DELETE FROM ${t} WHERE ${owner}`),
    list: db.prepare(
      `SELECT id, state, lease_until, expires_at, status, length(body) AS body_bytes FROM ${t}
       WHERE namespace = :namespace AND id > :after AND expires_at > :now ORDER BY id LIMIT :limit`,
    ),
    // The sweeper deletes only its own namespace: another namespace in the same file may belong to
    // an application whose engine runs on another clock.
    sweepBatch: db.prepare(
      `DELETE FROM ${t} WHERE (namespace, id) IN (
         SELECT namespace, id FROM ${t} WHERE namespace = :namespace AND expires_at <= :now LIMIT :limit)`,
    ),
  };
}

/** A row as the `list` statement reads it: no fingerprint, token or bytes. */
interface SummaryRow {
  id: string;
  state: RecordState;
  lease_until: number;
  expires_at: number;
  status: number | null;
  body_bytes: number | null;
}

function toSummary(row: SummaryRow): RecordSummary {
  return {
    id: row.id,
    state: row.state,
    leaseUntil: row.lease_until,
    expiresAt: row.expires_at,
    status: row.status,
    // An empty body is a zero-length BLOB (length 0); no kept response is NULL.
    bodyBytes: row.status === null ? null : (row.body_bytes ?? 0),
  };
}

function pageLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`sqliteStore: limit must be a positive integer, got ${String(limit)}`);
  }
  return limit;
}

function fresh(input: AcquireInput): IdempotencyRecord {
  return {
    id: input.id,
    state: 'in_progress',
    fingerprint: input.fingerprint,
    token: input.token,
    leaseUntil: input.leaseUntil,
    expiresAt: input.expiresAt,
    response: null,
  };
}

function toRecord(id: string, row: RecordRow): IdempotencyRecord {
  return {
    id,
    state: row.state,
    fingerprint: row.fingerprint,
    token: row.token,
    leaseUntil: row.lease_until,
    expiresAt: row.expires_at,
    response: row.status === null ? null : toResponse(row.status, row.headers, row.body),
  };
}

function toResponse(status: number, headers: string | null, body: Uint8Array | null): StoredResponse {
  return {
    status,
    headers: headers === null ? [] : (JSON.parse(headers) as Array<[string, string]>),
    // A plain Uint8Array of its own, whatever node:sqlite hands back; an empty body is a zero-length
    // BLOB and comes back empty, never as "no response".
    body: body === null ? new Uint8Array(0) : new Uint8Array(body),
  };
}

interface Config {
  database: string | DatabaseSync;
  namespace: string;
  table: string;
  busyTimeoutMs: number;
  sweepIntervalMs: number;
  sweepBatchSize: number;
  clock: () => number;
}

function validate(options: SqliteStoreOptions): Config {
  if (typeof options !== 'object' || options === null) {
    throw invalid('sqliteStore() takes an options object: sqliteStore({ database: "./oncely.db" })');
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw invalid(`unknown option "${name}"`);
  }
  const { database } = options;
  if (!(database instanceof nodeSqlite().DatabaseSync) && (typeof database !== 'string' || database === '')) {
    throw invalid('"database" must be a file path or an open DatabaseSync from node:sqlite');
  }
  const namespace = options.namespace ?? SQLITE_DEFAULTS.namespace;
  if (typeof namespace !== 'string' || namespace === '') {
    throw invalid('"namespace" must be a non-empty string');
  }
  const table = options.table ?? SQLITE_DEFAULTS.table;
  if (typeof table !== 'string' || !TABLE_NAME.test(table)) {
    throw invalid(`"table" must match ${TABLE_NAME} (letters, digits, underscore)`);
  }
  if (/^sqlite_/i.test(table)) throw invalid('"table" must not start with "sqlite_" (reserved by SQLite)');
  const clock = options.clock ?? SQLITE_DEFAULTS.clock;
  if (typeof clock !== 'function') throw invalid('"clock" must be a function returning epoch milliseconds');
  return {
    database,
    namespace,
    table,
    busyTimeoutMs: integer(options, 'busyTimeoutMs', 0),
    sweepIntervalMs: integer(options, 'sweepIntervalMs', 0),
    sweepBatchSize: integer(options, 'sweepBatchSize', 1),
    clock,
  };
}

function integer(
  options: SqliteStoreOptions,
  name: 'busyTimeoutMs' | 'sweepIntervalMs' | 'sweepBatchSize',
  min: number,
): number {
  const value: unknown = options[name] ?? SQLITE_DEFAULTS[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_MS) {
    throw invalid(`"${name}" must be an integer from ${min} to ${MAX_MS}, got ${String(value)}`);
  }
  return value;
}

function invalid(detail: string): OncelyError {
  return new OncelyError('ERR_ONCELY_INVALID_OPTION', `sqliteStore: ${detail}`);
}

/**
 * `node:sqlite`, loaded when a store is made rather than imported at the top: on a Node without it,
 * importing this package then reaches the one-line version check of index.ts instead of failing
 * with Node's own ERR_UNKNOWN_BUILTIN_MODULE.
 */
function nodeSqlite(): typeof import('node:sqlite') {
  return process.getBuiltinModule('node:sqlite');
}
