/**
 * Transactional mode: the idempotent consumer on PostgreSQL. Each delivery runs in ONE transaction
 * whose first statement records the message in the inbox table; the handler's writes follow on the
 * same connection, and both commit together. So a crash at any point leaves either nothing (the
 * redelivery processes the message) or both (the redelivery is a duplicate): never the handler's
 * writes without the inbox row, never the row without the writes.
 *
 *   BEGIN (READ COMMITTED); SET LOCAL lock_timeout
 *   INSERT INTO inbox (consumer, message_id, payload_hash, received_at) ... ON CONFLICT DO NOTHING
 *     1 row  → new: run the handler with this connection, then COMMIT; the caller acks.
 *     0 rows → recorded before (the INSERT waited for a concurrent delivery's transaction, if any):
 *              read the stored hash, ROLLBACK (nothing new), answer `duplicate`, or `mismatch` when
 *              the hash differs (an error event; not processed).
 *   handler throws → ROLLBACK (the inbox row goes too): the caller nacks, a redelivery runs again.
 *
 * Retention of the rows IS the deduplication window: a message redelivered after its row was swept
 * is processed again. Keep `retentionMs` longer than anything can redeliver or republish a message
 * (see `docs/delivery.md`, "Idempotent consumer").
 */
import { OncelyError } from '@oncely/core';
import { type ConsumerEventHandler, emitter } from './events.ts';
import { inboxDdl, inboxStatements, migrationStatement } from './inbox-schema.ts';
import { checkedId, type Message, payloadHash } from './message.ts';
import type { HandleOutcome } from './outcome.ts';
import type { PgPool, PgPoolClient, PgQueryable, PoolClientOf } from './pg-types.ts';
import { parseTableName } from './table-name.ts';

/** Options of `inbox()`. Every default is in `INBOX_DEFAULTS`. */
export interface InboxOptions {
  /**
   * This consumer's name: each consumer of a message (billing, email, analytics) processes it once
   * on its own, so the unique key is (consumer, message id). Keep it stable across deploys.
   */
  consumer: string;
  /**
   * How long a processed message's row is kept: the deduplication window. A redelivery later than
   * this is processed again, so make it longer than the broker's redelivery horizon (the stream's
   * `max_age`, the queue's message TTL, the outbox relay's republish window). No default: it is a
   * decision about your brokers.
   */
  retentionMs: number;
  /**
   * The inbox table, optionally schema-qualified (`billing.oncely_inbox`): lower-case letters,
   * digits and underscores. Several consumers may share one table.
   * @default 'oncely_inbox'
   */
  table?: string;
  /**
   * How long a delivery waits on a lock in its transaction: on the inbox row of a concurrent delivery
   * of the same message (a redelivery while the first is still running), then `busy` (nak'd for
   * later), and on any lock your handler's statements wait for, then the handler fails (retried).
   * Bounds the wait behind a frozen process. 0 leaves the server's `lock_timeout` alone.
   * @default 10_000
   */
  lockTimeoutMs?: number;
  /** With `busy`, how soon to ask again (the subscription's nak delay). @default 1_000 */
  retryAfterMs?: number;
  /** Rows deleted per `sweep` statement (each batch its own short transaction). @default 1_000 */
  sweepBatchSize?: number;
  /** Time source, epoch ms: `received_at` and the sweep's cutoff. @default Date.now */
  clock?: () => number;
  /** Decisions: `processed`, `duplicate`, `mismatch` (an error), `busy`. @default none */
  onEvent?: ConsumerEventHandler | undefined;
}

/**
 * Every default of `inbox()`.
 * @example
 * inbox({ consumer: 'billing', retentionMs: 7 * DAY, lockTimeoutMs: 2 * INBOX_DEFAULTS.lockTimeoutMs });
 */
export const INBOX_DEFAULTS = Object.freeze({
  table: 'oncely_inbox',
  lockTimeoutMs: 10_000,
  retryAfterMs: 1_000,
  sweepBatchSize: 1_000,
  // A wrapper rather than `Date.now` itself, so a test that mocks `Date` also moves the inbox.
  clock: (): number => Date.now(),
});

/** The handler of one message: write with `tx`, inside the transaction. Never COMMIT, ROLLBACK or release it. */
export type InboxWork<Client, M extends Message, T> = (tx: Client, message: M) => T | Promise<T>;

/** Transactional mode's consumer, returned by `inbox()`. */
export interface Inbox {
  /** The consumer name the rows are keyed by. */
  readonly consumer: string;
  /** The table, as configured. */
  readonly table: string;
  /** Create the table and index if missing; safe from many processes at once. */
  migrate(pool: PgQueryable): Promise<void>;
  /**
   * Process `message` at most once for this consumer: the inbox row and `work`'s writes commit in one
   * transaction, on a connection from `pool`. Resolves once the outcome is durable (then ack); throws
   * what `work` threw (nothing of that run is kept: nak), or an `OncelyError` for a message whose id is
   * missing or unusable.
   */
  handle<Pool extends PgPool, M extends Message, T>(
    pool: Pool,
    message: M,
    work: InboxWork<PoolClientOf<Pool>, M, T>,
  ): Promise<HandleOutcome<T>>;
  /**
   * Delete this consumer's rows older than `retentionMs`, in batches (`FOR UPDATE SKIP LOCKED`, safe
   * from every process at once). Resolves with the number deleted. Run it on a schedule.
   */
  sweep(pool: PgQueryable): Promise<number>;
}

const OPTION_NAMES: ReadonlySet<string> = new Set<keyof InboxOptions>([
  'consumer',
  'retentionMs',
  'table',
  'lockTimeoutMs',
  'retryAfterMs',
  'sweepBatchSize',
  'clock',
  'onEvent',
]);
// lock_timeout is a 32-bit count of milliseconds.
const MAX_MS = 2 ** 31 - 1;
const MAX_BATCH = 100_000;
// A row that conflicted and then vanished before it could be read was swept in between (it was past
// retention); the delivery then inserts again. More than a few rounds of that is not a race.
const MAX_ROUNDS = 3;

/**
 * The idempotent consumer in transactional mode, on PostgreSQL.
 * @example
 * const box = inbox({ consumer: 'billing', retentionMs: 14 * DAY });
 * await box.migrate(pool);
 * const outcome = await box.handle(pool, message, async (tx, m) => {
 *   await tx.query('INSERT INTO invoices (order_id, amount) VALUES ($1, $2)', [m.key, m.payload.amount]);
 * });
 */
export function inbox(options: InboxOptions): Inbox {
  if (typeof options !== 'object' || options === null) {
    throw invalid('inbox() takes an options object: inbox({ consumer, retentionMs })');
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw invalid(`unknown option "${name}"`);
  }
  const { consumer } = options;
  if (typeof consumer !== 'string' || consumer === '') {
    throw invalid('"consumer" must be a non-empty string: the name this consumer deduplicates under');
  }
  const table = parseTableName(options.table ?? INBOX_DEFAULTS.table);
  if (typeof table === 'string') throw invalid(`"table" ${table}`);
  if (options.retentionMs === undefined) {
    throw invalid(
      '"retentionMs" is required: it is the deduplication window, and must be longer than the ' +
        "broker's redelivery horizon",
    );
  }
  const retentionMs = integer(options.retentionMs, 'retentionMs', 1, Number.MAX_SAFE_INTEGER);
  const lockTimeoutMs = integer(options.lockTimeoutMs, 'lockTimeoutMs', 0, MAX_MS);
  const retryAfterMs = integer(options.retryAfterMs, 'retryAfterMs', 0, MAX_MS);
  const sweepBatchSize = integer(options.sweepBatchSize, 'sweepBatchSize', 1, MAX_BATCH);
  const clock = options.clock ?? INBOX_DEFAULTS.clock;
  if (typeof clock !== 'function') throw invalid('"clock" must be a function returning epoch milliseconds');
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
    throw invalid('"onEvent" must be a function');
  }
  const emit = emitter(options.onEvent, () => Math.floor(clock()));
  const statements = inboxStatements(table);
  // Sent in one round trip with BEGIN (a simple-protocol query of two statements), before the INSERT.
  const begin =
    lockTimeoutMs > 0
      ? `BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = ${lockTimeoutMs}`
      : 'BEGIN ISOLATION LEVEL READ COMMITTED';

  const explain = (error: unknown): unknown => {
    if (codeOf(error) === '42P01') {
      return new Error(
        `inbox: the table ${table.display} does not exist; run inbox().migrate(pool) or apply inboxSchema()`,
        { cause: error },
      );
    }
    return error;
  };

  async function handle<Pool extends PgPool, M extends Message, T>(
    pool: Pool,
    message: M,
    work: InboxWork<PoolClientOf<Pool>, M, T>,
  ): Promise<HandleOutcome<T>> {
    type Client = PoolClientOf<Pool>;
    const messageId = checkedId(message.id);
    const hash = payloadHash(message);
    const client = (await pool.connect()) as Client & PgPoolClient;
    // Set when the session may be unusable (a failed ROLLBACK or COMMIT): the connection is then
    // destroyed rather than handed to the next user of the pool in an unknown state.
    let destroy: Error | undefined;
    let open = false;
    const rollback = async (): Promise<void> => {
      if (!open) return;
      open = false;
      try {
        await client.query('ROLLBACK');
      } catch (error) {
        destroy = asError(error);
      }
    };
    try {
      for (let round = 1; ; round++) {
        await client.query(begin);
        open = true;
        let inserted: boolean;
        try {
          const result = await client.query(statements.insert, [
            consumer,
            messageId,
            hash,
            Math.floor(clock()),
          ]);
          inserted = (result.rowCount ?? 0) > 0;
        } catch (error) {
          await rollback();
          if (codeOf(error) === '55P03') {
            // The INSERT waited lockTimeoutMs on a concurrent delivery's uncommitted row: that
            // delivery is still processing. Let the broker bring this one back later.
            emit({ type: 'busy', consumer, messageId, delayMs: retryAfterMs });
            return { status: 'busy', retryAfterMs, reason: 'in_progress' };
          }
          throw explain(error);
        }
        if (inserted) {
          let value: T;
          try {
            value = await work(client, message);
          } catch (error) {
            await rollback();
            throw error;
          }
          open = false;
          let result: { command?: string };
          try {
            result = await client.query('COMMIT');
          } catch (error) {
            // Either the server refused (nothing committed) or the connection died with COMMIT in
            // flight (unknown). Both are safe to redeliver: the redelivery finds the row, or not.
            destroy = asError(error);
            throw error;
          }
          // COMMIT of a failed transaction answers ROLLBACK instead of an error: the handler caught
          // an SQL error and carried on. Nothing was recorded, so this is the handler's failure.
          if (result.command === 'ROLLBACK') {
            throw new Error(
              'inbox: the transaction was rolled back at COMMIT (a statement of the handler failed and its error was caught); nothing was recorded',
            );
          }
          emit({ type: 'processed', consumer, messageId });
          return { status: 'processed', value };
        }
        const found = await client.query(statements.recorded, [consumer, messageId]);
        await rollback();
        const stored = found.rows[0]?.payload_hash;
        if (typeof stored !== 'string') {
          if (round < MAX_ROUNDS) continue;
          throw new Error(`inbox: the row of message ${messageId} conflicted but could not be read`);
        }
        if (stored !== hash) {
          const error = new OncelyError(
            'ERR_ONCELY_KEY_REUSED',
            `Message ${JSON.stringify(messageId)} was processed by consumer ${JSON.stringify(consumer)} ` +
              'with another payload; this one is not processed. A producer reused a message id.',
          );
          emit({ type: 'mismatch', consumer, messageId, error });
          return { status: 'mismatch', error };
        }
        emit({ type: 'duplicate', consumer, messageId });
        return { status: 'duplicate', value: undefined };
      }
    } catch (error) {
      await rollback();
      throw error;
    } finally {
      client.release(destroy);
    }
  }

  return {
    consumer,
    table: table.display,
    async migrate(pool) {
      try {
        await pool.query(migrationStatement(table));
      } catch (error) {
        throw explain(error);
      }
    },
    handle,
    async sweep(pool) {
      const cutoff = Math.floor(clock()) - retentionMs;
      let total = 0;
      for (;;) {
        const result = await pool.query(statements.sweep, [consumer, cutoff, sweepBatchSize]);
        const deleted = result.rowCount ?? 0;
        total += deleted;
        if (deleted < sweepBatchSize) return total;
      }
    },
  };
}

/**
 * The inbox table's DDL, for your own migration tool (`inbox().migrate()` applies the same).
 * @example
 * await sql.unsafe(inboxSchema({ table: 'billing.oncely_inbox' }));
 */
export function inboxSchema(options: { table?: string } = {}): string {
  const table = parseTableName(options.table ?? INBOX_DEFAULTS.table);
  if (typeof table === 'string') throw invalid(`"table" ${table}`);
  return inboxDdl(table);
}

function integer(
  given: unknown,
  name: 'retentionMs' | 'lockTimeoutMs' | 'retryAfterMs' | 'sweepBatchSize',
  min: number,
  max: number,
): number {
  const value = given ?? INBOX_DEFAULTS[name as keyof typeof INBOX_DEFAULTS];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`"${name}" must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function invalid(detail: string): OncelyError {
  return new OncelyError('ERR_ONCELY_INVALID_OPTION', `inbox: ${detail}`);
}
