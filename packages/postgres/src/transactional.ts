/**
 * Transactional mode: the handler's own writes and the completion of the idempotency record commit
 * in ONE PostgreSQL transaction (the one-phase case of Brandur Leach's "atomic phases"). A crash can
 * then never leave "written but not recorded" (a retry would write again) nor "recorded but not
 * written" (a retry would replay a response for work that never landed): both commit, or neither.
 *
 * The flow, per request:
 *   1. `oncely.begin` acquires the key on its own connection and commits at once, so concurrent
 *      duplicates see the record in progress (409, or a wait) instead of queueing on a lock.
 *   2. A connection from the pool: BEGIN (READ COMMITTED) → your work, with that connection.
 *   3. The completion: an UPDATE fenced by the owner's token, on the same connection, through the
 *      engine's `commitWith` (which builds it: retention, body cap, cache policy).
 *   4. COMMIT. If the fenced UPDATE found another owner (our lease lapsed and a retry took the key
 *      over), ROLLBACK instead: our writes vanish and the new owner does them.
 *   Any error: ROLLBACK, release the key (`abort`), rethrow. The connection always goes back.
 *
 * Isolation is READ COMMITTED, always: while the work runs, the engine renews the lease by updating
 * the record's row from another connection, and under REPEATABLE READ or SERIALIZABLE the completion
 * would then meet a row newer than its snapshot and fail with a serialization error.
 */
import {
  type BeginInput,
  type CommitOutcome,
  type CompleteInput,
  type ExecuteDecision,
  type Oncely,
  OncelyError,
  replayResponse,
  runResultOf,
  runResultResponse,
  type StoredResponse,
  storableResponse,
} from '@oncely/core';
import type { PgPool, PgPoolClient, PoolClientOf } from './pg-types.ts';
import { codeOf, type PostgresStore, postgresStoreInternals } from './postgres-store.ts';
import { responseParams } from './record-row.ts';

/** Options of `transactional()`. Every default is in `TRANSACTIONAL_DEFAULTS`. */
export interface TransactionalOptions<Pool extends PgPool = PgPool> {
  /** The engine. Its store must be `store` itself (`createOncely({ store })`). */
  oncely: Oncely;
  /** The `postgresStore()` the engine uses: its table receives the completion. */
  store: PostgresStore;
  /**
   * Lends the connection each transaction runs on; it must reach the same database as the store.
   * Each request in flight holds one connection for its transaction, and lease renewals need another
   * now and then: size the pool above your concurrency, and at least 2.
   * @default the store's pool
   */
  pool?: Pool;
  /**
   * From the completion UPDATE until COMMIT, the record's row is locked. If COMMIT does not arrive
   * within this many ms (a frozen process, a partition), the server ends the session, rolling back,
   * so the key is not blocked until TCP keepalive notices. 0 leaves the server's setting alone.
   * @default 10_000
   */
  commitWindowMs?: number;
}

/**
 * Every default of `transactional()`.
 * @example
 * transactional({ oncely, store, commitWindowMs: 2 * TRANSACTIONAL_DEFAULTS.commitWindowMs });
 */
export const TRANSACTIONAL_DEFAULTS = Object.freeze({
  commitWindowMs: 10_000,
});

/** The outcome of `execute`: the response to send, and whether it is a replay of an earlier one. */
export interface TransactionalResponse {
  /** A first run's response as your work returned it; a replay's as stored, plus `Idempotent-Replayed: true`. */
  response: StoredResponse;
  replayed: boolean;
}

/** The work of one request: run it on `client`, inside the transaction. Never COMMIT, ROLLBACK or release it. */
export type TransactionalWork<Client, T> = (client: Client, signal: AbortSignal) => T | Promise<T>;

/** Transactional mode, returned by `transactional()`. */
export interface Transactional<Client extends PgPoolClient = PgPoolClient> {
  /**
   * Like `oncely.run`: run `work` at most once per key and return its JSON-serialisable result (a
   * replay returns the stored result, parsed, without running `work`). The result is recorded in the
   * transaction of `work`'s writes. Throws the `OncelyError` of a rejection, `ERR_ONCELY_LEASE_LOST`
   * when the key was taken over before COMMIT (nothing of this run is kept), or what `work` threw.
   */
  run<T>(
    input: Omit<BeginInput, 'fingerprint'> & { fingerprint?: string },
    work: TransactionalWork<Client, T>,
  ): Promise<T>;
  /**
   * The HTTP shape, for any framework's route: `work` returns the response; it is stored (minus the
   * headers never replayed) in the same transaction as `work`'s writes. Resolves with the response to
   * send; throws the `OncelyError` of a rejection (render it with `problemResponse(error)`),
   * `ERR_ONCELY_LEASE_LOST`, or what `work` threw.
   */
  execute(input: BeginInput, work: TransactionalWork<Client, StoredResponse>): Promise<TransactionalResponse>;
}

const OPTION_NAMES: ReadonlySet<string> = new Set(['oncely', 'store', 'pool', 'commitWindowMs']);
// idle_in_transaction_session_timeout is a 32-bit count of milliseconds.
const MAX_MS = 2 ** 31 - 1;

/**
 * Transactional mode on a `postgresStore()`: your writes and the idempotency record commit together.
 * @example
 * const tx = transactional({ oncely, store, pool });
 * const payment = await tx.run({ scope: tenant, key }, async (client) => {
 *   const { rows } = await client.query('INSERT INTO payments (amount) VALUES ($1) RETURNING id', [500]);
 *   return rows[0];
 * });
 */
export function transactional<Pool extends PgPool = PgPool>(
  options: TransactionalOptions<Pool>,
): Transactional<PoolClientOf<Pool>> {
  type Client = PoolClientOf<Pool>;
  if (typeof options !== 'object' || options === null) {
    throw invalid('transactional() takes an options object: transactional({ oncely, store })');
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw invalid(`unknown option "${name}"`);
  }
  const { oncely, store } = options;
  const internals = postgresStoreInternals(store);
  if (internals === undefined) throw invalid('"store" must be a store made by postgresStore()');
  if (typeof oncely?.begin !== 'function' || oncely.options?.store !== store) {
    throw invalid(
      '"oncely" must be an engine whose store is "store" (createOncely({ store })): the engine acquires ' +
        'the key in the table that the transaction completes',
    );
  }
  const pool = (options.pool ?? internals.config.pool) as Partial<PgPool<Client>>;
  if (typeof pool.connect !== 'function' || typeof pool.query !== 'function') {
    throw invalid(
      '"pool" must be a pool with connect(), such as a pg.Pool (a single pg.Client cannot lend connections)',
    );
  }
  const connect = (): Promise<Client> => pool.connect!();
  const commitWindowMs = options.commitWindowMs ?? TRANSACTIONAL_DEFAULTS.commitWindowMs;
  if (!Number.isInteger(commitWindowMs) || commitWindowMs < 0 || commitWindowMs > MAX_MS) {
    throw invalid(`"commitWindowMs" must be an integer from 0 to ${MAX_MS}, got ${String(commitWindowMs)}`);
  }
  const { config, statements } = internals;

  /** The fenced completion, on the transaction's connection. */
  const complete = async (client: Client, input: CompleteInput): Promise<boolean> => {
    internals.check();
    const [status, headers, body] = responseParams(input.response);
    const values = [config.namespace, input.id, input.token, input.expiresAt, status, headers, body];
    try {
      const result =
        commitWindowMs > 0
          ? await client.query(statements.completeInTransaction, [...values, String(commitWindowMs)])
          : await client.query(statements.complete, values);
      return (result.rowCount ?? 0) > 0;
    } catch (error) {
      throw internals.explain(error);
    }
  };

  async function inTransaction<T>(
    decision: ExecuteDecision,
    work: TransactionalWork<Client, T>,
    toResponse: (value: T) => StoredResponse,
  ): Promise<T> {
    let client: Client;
    try {
      client = await connect();
    } catch (error) {
      await decision.abort(error);
      throw error;
    }
    // Set when the session may be unusable (a failed ROLLBACK or COMMIT): the connection is then
    // destroyed rather than handed to the next request in an unknown state.
    let destroy: Error | undefined;
    // Given back before any step that needs another pool connection (freeing the key): holding it
    // while waiting for a second one deadlocks a pool whose every connection does the same.
    let returned = false;
    const giveBack = (): void => {
      if (returned) return;
      returned = true;
      client.release(destroy);
    };
    const rollback = async (): Promise<void> => {
      try {
        await client.query('ROLLBACK');
      } catch (error) {
        destroy = asError(error);
      }
    };
    // The owner's token, as the engine passed it to the completion: needed to free the key if COMMIT
    // fails after the completion UPDATE succeeded (the engine considers the decision settled then).
    let token: string | undefined;
    try {
      let value: T;
      let outcome: CommitOutcome;
      try {
        await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
        value = await work(client, decision.signal);
        const response = toResponse(value);
        if (!decision.keeps(response.status)) {
          // The cache policy does not keep this response, so the key is freed and a retry runs again:
          // this run's writes must not stay behind for that retry to find. They commit only with a record.
          await rollback();
          giveBack();
          await decision.commit(response);
          return value;
        }
        outcome = await decision.commitWith(response, (input) => {
          token = input.token;
          return complete(client, input);
        });
      } catch (error) {
        // Nothing of this run is kept, so the key is freed: a retry runs the work again.
        await rollback();
        giveBack();
        await decision.abort(error);
        throw error;
      }
      if (outcome === 'lease_lost') {
        await rollback();
        throw new OncelyError(
          'ERR_ONCELY_LEASE_LOST',
          'The lease on this key lapsed and another request took it over before this one could commit; ' +
            'its writes were rolled back, and the new owner runs the work.',
        );
      }
      if (outcome === 'released') {
        // Only reachable if the policy changed its mind between keeps() and commitWith: same as above.
        await rollback();
        return value;
      }
      let definite = false;
      try {
        const result = await client.query('COMMIT');
        // COMMIT of a failed transaction answers ROLLBACK instead of an error. It happens only when no
        // completion was written (fail-open, the store was down) and the work swallowed an SQL error.
        if (result.command === 'ROLLBACK') {
          definite = true;
          throw new Error(
            'postgres transactional: the transaction was rolled back at COMMIT (a statement of the work failed and its error was caught)',
          );
        }
      } catch (error) {
        destroy = asError(error);
        giveBack();
        if (token !== undefined && (definite || rolledBack(error))) {
          // The server refused the COMMIT, so the completion and the writes are both gone and the
          // record is in progress under our token again: free the key now rather than after the lease.
          await options.store.release({ id: decision.keyHash, token }).catch(() => {});
        }
        // Otherwise the outcome is unknown (the connection died with COMMIT in flight): the record is
        // either completed with the writes, or in progress without them and taken over once its lease
        // lapses (renewal has stopped). Releasing would be safe (it is fenced by state, so it cannot
        // delete a completed record), but it could block on the row lock of a transaction that the
        // server has not yet noticed is dead.
        throw error;
      }
      return value;
    } finally {
      giveBack();
    }
  }

  return {
    async run<T>(
      input: Omit<BeginInput, 'fingerprint'> & { fingerprint?: string },
      work: TransactionalWork<Client, T>,
    ): Promise<T> {
      const decision = await oncely.begin({ ...input, fingerprint: input.fingerprint ?? '' });
      if (decision.kind === 'reject') throw decision.error;
      if (decision.kind === 'replay') return runResultOf<T>(decision.response);
      return inTransaction(decision, work, runResultResponse);
    },

    async execute(input: BeginInput, work: TransactionalWork<Client, StoredResponse>) {
      const decision = await oncely.begin(input);
      if (decision.kind === 'reject') throw decision.error;
      if (decision.kind === 'replay') return { response: replayResponse(decision.response), replayed: true };
      const response = await inTransaction(decision, work, storableResponse);
      return { response, replayed: false };
    },
  };
}

/**
 * True when a failed COMMIT certainly rolled back: the server answered with an integrity violation
 * (class 23, a deferred constraint) or a transaction rollback (class 40: serialization failure,
 * deadlock). A lost connection, or a session the server ended, leaves the outcome unknown.
 */
function rolledBack(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && (code.startsWith('23') || code.startsWith('40'));
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function invalid(detail: string): OncelyError {
  return new OncelyError('ERR_ONCELY_INVALID_OPTION', `transactional: ${detail}`);
}
