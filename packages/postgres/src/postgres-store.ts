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
} from '@oncely/core';
import type { PgQueryResult } from './pg-types.ts';
import { type RecordRow, responseParams, toRecord } from './record-row.ts';
import { migrationStatement } from './schema.ts';
import { type Statements, statements } from './statements.ts';
import { type PostgresStoreOptions, resolveStoreOptions, type StoreConfig } from './store-options.ts';

/** A `Store` on PostgreSQL, plus `migrate()` and `sweep()`. */
export type PostgresStore = Store & {
  /**
   * Create the table and its index if they are missing. Idempotent, and safe to run from many
   * processes at once (they take turns on an advisory lock). Needs the CREATE privilege on the schema.
   */
  migrate(): Promise<void>;
  /** Delete every expired row of this namespace now (by `clock`), in batches; resolves with the number deleted. */
  sweep(): Promise<number>;
  /** One page of this namespace's live records, by id. */
  list(input: ListInput): Promise<ListResult>;
  /** Delete this namespace's expired rows (by the given `now`), in batches; resolves with how many. */
  purgeExpired(input: PurgeExpiredInput): Promise<number>;
};

/** What transactional mode needs from a store it did not build. */
export interface PostgresStoreInternals {
  config: StoreConfig;
  statements: Statements;
  /** Throws when the store is closed; wraps a missing table into an error that says what to do. */
  check(): void;
  explain(error: unknown): unknown;
}

// Keyed by the store object: transactional() finds a store's table and statements without a public
// accessor, and a hand-made object that merely looks like a store is refused.
const internals = new WeakMap<object, PostgresStoreInternals>();

/** The internals of a store made by `postgresStore()`, or undefined for any other object. */
export function postgresStoreInternals(store: unknown): PostgresStoreInternals | undefined {
  return typeof store === 'object' && store !== null ? internals.get(store) : undefined;
}

// SQLSTATE 40001: a statement of a REPEATABLE READ or SERIALIZABLE session (a role or database whose
// default isolation is not PostgreSQL's READ COMMITTED) met a row changed after its snapshot. Every
// store step is one statement that had no effect when it failed, so running it again is safe. Many
// duplicates of one key collide round after round (each acquire writes the row), hence the generous
// count and the jittered backoff; under READ COMMITTED this never happens.
const SERIALIZATION_FAILURE = '40001';
const SERIALIZATION_ATTEMPTS = 30;
// SQLSTATE 42P01: the table does not exist.
const UNDEFINED_TABLE = '42P01';

/**
 * The PostgreSQL store: one statement per step, records shared by every server that reaches the
 * database, and a transactional mode (`transactional()`) in which your writes and the completion of
 * the record commit together. Run `migrate()` once (or apply `postgresSchema()`) before first use.
 * @example
 * const store = postgresStore({ pool: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * await store.migrate();
 * const oncely = createOncely({ store });
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  const config = resolveStoreOptions(options);
  const { pool, table, namespace, sweepIntervalMs, sweepBatchSize, clock } = config;
  const sql = statements(table);

  let timer: ReturnType<typeof setInterval> | undefined;
  let sweeping = 0;
  let started = false;
  let closed = false;

  const assertOpen = (): void => {
    if (closed) throw new Error(`postgresStore is closed (namespace "${namespace}", table ${table.display})`);
  };

  const check = (): void => {
    assertOpen();
    // The sweeper starts with the first call, not at construction: building a store does no I/O
    // and leaves nothing running, so a store built only to check options, or never used, costs nothing.
    if (started || sweepIntervalMs === 0) return;
    started = true;
    timer = setInterval(() => {
      // An overlapping tick is skipped, and a failed sweep is retried by the next tick. No console
      // output from library code: expired rows are never returned anyway, so a failed sweep costs
      // disk space, never correctness.
      if (sweeping === 0) sweep().catch(() => {});
    }, sweepIntervalMs);
    // The sweeper must never keep a process alive on its own.
    timer.unref();
  };

  const explain = (error: unknown): unknown => {
    if (codeOf(error) !== UNDEFINED_TABLE) return error;
    return new Error(
      `postgresStore: table ${table.display} does not exist. Run \`await store.migrate()\` once, or apply postgresSchema() with your migration tool.`,
      { cause: error },
    );
  };

  const query = async (text: string, values: readonly unknown[]): Promise<PgQueryResult> => {
    check();
    for (let attempt = 1; ; attempt++) {
      try {
        return await pool.query(text, values);
      } catch (error) {
        if (codeOf(error) !== SERIALIZATION_FAILURE || attempt >= SERIALIZATION_ATTEMPTS)
          throw explain(error);
      }
      await sleep(Math.random() * Math.min(50, 2 ** attempt));
    }
  };

  const changed = (result: PgQueryResult): boolean => (result.rowCount ?? 0) > 0;

  // The sweeper's work and `purgeExpired`: delete rows expired by `now`, at most `limit` of them.
  const purge = async (now: number, limit: number): Promise<number> => {
    check();
    sweeping++;
    try {
      let deleted = 0;
      for (;;) {
        // Each batch is one statement, so one short transaction: acquires that need a row the
        // sweeper holds wait for one batch at most, and other sweepers skip the rows it holds.
        const batch = Math.min(sweepBatchSize, limit - deleted);
        const result = await query(sql.sweep, [namespace, now, batch]);
        const count = result.rowCount ?? 0;
        deleted += count;
        // A short batch means nothing unlocked was left (rows other sweepers held, they delete).
        // close() during a sweep ends it quietly, with what was deleted so far.
        if (count < batch || deleted >= limit || closed) return deleted;
      }
    } finally {
      sweeping--;
    }
  };

  const sweep = (): Promise<number> => purge(clock(), Number.POSITIVE_INFINITY);

  const store: PostgresStore = {
    name: 'postgres',

    async acquire(input: AcquireInput): Promise<AcquireResult> {
      const result = await query(sql.acquire, [
        namespace,
        input.id,
        input.fingerprint,
        input.token,
        input.now,
        input.leaseUntil,
        input.expiresAt,
      ]);
      const row = result.rows[0] as RecordRow | undefined;
      // INSERT ... ON CONFLICT DO UPDATE (unconditional) returns exactly one row; anything else is a
      // broken driver or table, and must fail rather than be read as "not acquired".
      if (row === undefined) throw new Error('postgresStore: acquire returned no row');
      const record = toRecord(input.id, row);
      if (record.token !== input.token) return { acquired: false, record };
      return { acquired: true, record, takeover: Number(row.attempt) > 1 };
    },

    async complete(input: CompleteInput): Promise<boolean> {
      const [status, headers, body] = responseParams(input.response);
      return changed(
        await query(sql.complete, [namespace, input.id, input.token, input.expiresAt, status, headers, body]),
      );
    },

    async extend(input: ExtendInput): Promise<boolean> {
      return changed(await query(sql.extend, [namespace, input.id, input.token, input.leaseUntil]));
    },

    async release(input: ReleaseInput): Promise<boolean> {
      return changed(await query(sql.release, [namespace, input.id, input.token]));
    },

    async get(input: GetInput): Promise<IdempotencyRecord | null> {
      const result = await query(sql.get, [namespace, input.id, input.now]);
      const row = result.rows[0] as RecordRow | undefined;
      return row === undefined ? null : toRecord(input.id, row);
    },

    async migrate(): Promise<void> {
      // Not check(): a migration script builds a store only for this, and starts no sweeper.
      assertOpen();
      await pool.query(migrationStatement(table));
    },

    // By id within the namespace (the primary key), so a cursor is the last id of a page and holds
    // whatever is written meanwhile. One more row than the page is read to know whether there is more.
    async list(input: ListInput): Promise<ListResult> {
      const limit = pageLimit(input.limit);
      const result = await query(sql.list, [namespace, input.cursor ?? '', input.now, limit + 1]);
      const records = result.rows.slice(0, limit).map(toSummary);
      return result.rows.length > limit ? { records, cursor: records[records.length - 1]!.id } : { records };
    },

    purgeExpired: (input: PurgeExpiredInput) =>
      purge(input.now, input.limit === undefined ? Number.POSITIVE_INFINITY : pageLimit(input.limit)),

    sweep,

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      // The pool belongs to the caller, who may still use it: it is never ended here.
    },
  };
  internals.set(store, { config, statements: sql, check, explain });
  return store;
}

/** A row of the `list` statement; bigint columns may arrive as strings (see record-row.ts). */
function toSummary(row: Record<string, unknown>): RecordSummary {
  const status = row.status === null ? null : Number(row.status);
  return {
    id: String(row.id),
    state: row.state as RecordState,
    leaseUntil: Number(row.lease_until),
    expiresAt: Number(row.expires_at),
    status,
    // An empty body is a zero-length bytea (length 0); no kept response is NULL.
    bodyBytes: status === null ? null : Number(row.body_bytes ?? 0),
  };
}

function pageLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`postgresStore: limit must be a positive integer, got ${String(limit)}`);
  }
  return limit;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The SQLSTATE of a driver error, if it has one. */
export function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
