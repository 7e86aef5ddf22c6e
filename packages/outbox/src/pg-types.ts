/**
 * The one part of a PostgreSQL client that the outbox uses, as a type of its own: `query`. A `pg`
 * (node-postgres) `Pool`, `Client` or `PoolClient` satisfies it structurally, so `@oncely/outbox` has
 * no runtime dependency on `pg`, and `add()` runs on whatever connection holds your transaction.
 */

/** What a query resolves to: the rows, and how many rows an INSERT/UPDATE/DELETE touched. */
export interface PgQueryResult {
  rows: Array<Record<string, unknown>>;
  rowCount: number | null;
}

/** Anything that runs a parameterised query: a `pg.Pool`, a `pg.Client`, a `pg.PoolClient`. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<PgQueryResult>;
}
