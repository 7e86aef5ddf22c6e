/**
 * The few parts of a PostgreSQL client the inbox uses, as types of its own (the same shapes as
 * `@oncely/postgres`'s): a `pg` (node-postgres) `Pool` satisfies them as it is, so the consumer has
 * no runtime dependency on the driver. You install and configure it; the inbox calls `query` and
 * `connect`, and never creates or ends connections.
 */

/** What a query resolves to. */
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

/** A connection checked out of a pool: its queries share one session, hence one transaction. */
export interface PgPoolClient extends PgQueryable {
  /** Give the connection back; pass an error to destroy it instead (its session may be unusable). */
  release(destroy?: Error | boolean): void;
}

/** A pool that lends connections (a `pg.Pool`). */
export interface PgPool<Client extends PgPoolClient = PgPoolClient> extends PgQueryable {
  connect(): Promise<Client>;
}

/**
 * The connection type a pool lends, inferred from its `connect()`, so the handler's `tx` is your
 * driver's own client type (`pg.PoolClient`). The second signature lines up with pg's callback
 * overload of `connect`: TypeScript infers from overloads by position from the last.
 */
export type PoolClientOf<Pool> = Pool extends {
  connect(): Promise<infer Client>;
  connect(callback: never): void;
}
  ? Client extends PgPoolClient
    ? Client
    : PgPoolClient
  : PgPoolClient;
