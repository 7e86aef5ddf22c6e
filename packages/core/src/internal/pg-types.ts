/**
 * The few parts of a PostgreSQL client that Oncely uses, as types of its own, shared by every package
 * that talks to PostgreSQL (the store, the inbox, the outbox, sagas). A `pg` (node-postgres) `Pool`
 * satisfies them structurally, so none of them has a runtime dependency on `pg`: you install and
 * configure the driver, Oncely calls `query`, and `connect` where it needs a transaction.
 */

/** What a query resolves to: the rows, and how many rows an INSERT/UPDATE/DELETE touched. */
export interface PgQueryResult {
  rows: Array<Record<string, unknown>>;
  rowCount: number | null;
  /** The command tag (`COMMIT`, or `ROLLBACK` when COMMIT ended a failed transaction). */
  command?: string;
}

/** Anything that runs a parameterised query: a `pg.Pool`, a `pg.Client`, a `pg.PoolClient`. */
export interface PgQueryable {
  query(text: string, values?: readonly unknown[]): Promise<PgQueryResult>;
}

/** A connection checked out of a pool: queries on it share one session, hence one transaction. */
export interface PgPoolClient extends PgQueryable {
  /** Give the connection back; pass an error to destroy it instead (its session may be unusable). */
  release(destroy?: Error | boolean): void;
}

/** A pool that lends connections: what transactional mode needs (a `pg.Pool`). */
export interface PgPool<Client extends PgPoolClient = PgPoolClient> extends PgQueryable {
  connect(): Promise<Client>;
}

/**
 * The connection type a pool lends, inferred from its `connect()`, so that transactional work gets
 * your driver's own client type (`pg.PoolClient`, with its typed `query`). The second signature
 * lines up with pg's callback overload of `connect`: TypeScript infers from overloads by position
 * from the last, and without it would infer from the callback form and find nothing.
 */
export type PoolClientOf<Pool> = Pool extends {
  connect(): Promise<infer Client>;
  connect(callback: never): void;
}
  ? Client extends PgPoolClient
    ? Client
    : PgPoolClient
  : PgPoolClient;
