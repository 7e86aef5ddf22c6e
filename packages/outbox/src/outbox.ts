/**
 * The outbox: a table in your database, and `add()`, which writes a message in YOUR transaction, so
 * the message exists if and only if your business change committed. The outbox holds no connection:
 * every method takes the client to run on.
 */
import { OncelyError } from '@oncely/core';
import { type JsonValue, messageRow, type NewMessage } from './message.ts';
import { uuidV7Generator } from './message-id.ts';
import type { PgQueryable } from './pg-types.ts';
import { migrationStatement, schemaSql } from './schema.ts';
import { type Statements, statements } from './statements.ts';
import { parseTableName, type TableName } from './table-name.ts';

/** Options of `outbox()`. Every default is in `OUTBOX_DEFAULTS`. */
export interface OutboxOptions {
  /**
   * The outbox table, optionally schema-qualified (`billing.oncely_outbox`): lower-case letters,
   * digits and underscores, at most 52 characters. Create it with `migrate()` or `outboxSchema()`.
   * @default 'oncely_outbox'
   */
  table?: string;
  /** Clock for the timestamps of generated ids (UUID v7). @default Date.now */
  clock?: () => number;
}

/**
 * Every default of `outbox()`, in one place.
 * @example
 * outbox({ table: `billing.${OUTBOX_DEFAULTS.table}` });
 */
export const OUTBOX_DEFAULTS = Object.freeze({
  table: 'oncely_outbox',
  clock: (): number => Date.now(),
});

/** What `add()` did. */
export interface AddResult {
  /** The message id (generated, derived from the business key, or the UUID given). */
  id: string;
  /** False when a message with this id already existed: nothing was written. */
  added: boolean;
}

/** A message that failed `maxFailures` times, as `listDead()` returns it. */
export interface DeadMessage {
  id: string;
  /** Its position: pass the last one as `afterSeq` to page on. */
  seq: string;
  topic: string;
  key: string;
  type: string;
  payload: JsonValue;
  headers: Record<string, string>;
  attempts: number;
  failures: number;
  lastError: string | null;
  createdAt: Date;
}

/** The outbox's state, as the relay's metrics report it. */
export interface OutboxStats {
  /** Messages waiting to be published (dead ones not included). */
  pending: number;
  /** Messages parked as dead. */
  dead: number;
  /** Age of the oldest pending message in ms; 0 when none is pending. */
  lagMs: number;
}

/** An outbox on one table; see {@link outbox}. */
export interface Outbox {
  /** The table, as configured. */
  readonly table: string;
  /** Create the table and its indexes if missing. Idempotent; safe from many processes at once. */
  migrate(db: PgQueryable): Promise<void>;
  /**
   * Write a message in the caller's transaction: `tx` is the client that ran your `BEGIN`. Waits for
   * other open transactions that added to the same key (per-key order is commit order).
   */
  add(tx: PgQueryable, message: NewMessage): Promise<AddResult>;
  /** Wake this process's relays on this outbox now; call it right after your COMMIT. */
  notify(): void;
  /** Dead messages, oldest first. */
  listDead(db: PgQueryable, options?: { limit?: number; afterSeq?: string }): Promise<DeadMessage[]>;
  /** Put dead messages back to pending with their failures reset (all of them without `ids`); resolves with the count. */
  requeueDead(db: PgQueryable, options?: { ids?: readonly string[] }): Promise<number>;
  /** Delete the given dead messages, releasing the keys they held back; resolves with the count. */
  discardDead(db: PgQueryable, options: { ids: readonly string[] }): Promise<number>;
  /** Delete published messages older than `retentionMs`, in batches; resolves with the count. */
  cleanup(db: PgQueryable, options: { retentionMs: number; batchSize?: number }): Promise<number>;
  /** Pending and dead counts, and the lag. */
  stats(db: PgQueryable): Promise<OutboxStats>;
}

/** What the relay needs of an outbox, kept off its public surface. */
export interface OutboxInternals {
  table: TableName;
  sql: Statements;
  /** Register a wake-up listener; returns its removal. */
  subscribe(listener: () => void): () => void;
}

const internals = new WeakMap<Outbox, OutboxInternals>();

/** The internals of an outbox made by `outbox()`; throws for anything else. */
export function outboxInternals(value: unknown): OutboxInternals {
  const found = typeof value === 'object' && value !== null ? internals.get(value as Outbox) : undefined;
  if (!found) throw invalid('relay: "outbox" must be an outbox made by outbox()');
  return found;
}

const OPTION_NAMES: ReadonlySet<string> = new Set<keyof OutboxOptions>(['table', 'clock']);

/**
 * An outbox on a table. Building one does no I/O.
 * @example
 * const box = outbox();
 * await box.migrate(pool);
 * await client.query('BEGIN');
 * await client.query('UPDATE orders SET state = $2 WHERE id = $1', [orderId, 'paid']);
 * await box.add(client, { topic: 'orders.paid', key: orderId, type: 'order.paid', payload: { orderId } });
 * await client.query('COMMIT');
 * box.notify();
 */
export function outbox(options: OutboxOptions = {}): Outbox {
  if (typeof options !== 'object' || options === null) {
    throw invalid('outbox() takes an options object: outbox({ table })');
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw invalid(`outbox: unknown option "${name}"`);
  }
  const table = parseTableName(options.table ?? OUTBOX_DEFAULTS.table);
  if (typeof table === 'string') throw invalid(`outbox: "table" ${table}`);
  const clock = options.clock ?? OUTBOX_DEFAULTS.clock;
  if (typeof clock !== 'function') throw invalid('outbox: "clock" must be a function returning epoch ms');
  const newId = uuidV7Generator(clock);
  const sql = statements(table);
  const listeners = new Set<() => void>();

  const box: Outbox = {
    table: table.display,
    async migrate(db) {
      await db.query(migrationStatement(table));
    },
    async add(tx, message) {
      const row = messageRow(message, newId);
      const result = await tx.query(sql.add, [
        row.id,
        row.topic,
        row.key,
        row.type,
        row.payload,
        row.headers,
      ]);
      return { id: row.id, added: result.rows.length === 1 };
    },
    notify() {
      for (const listener of listeners) listener();
    },
    async listDead(db, { limit = 100, afterSeq = '0' } = {}) {
      if (!Number.isInteger(limit) || limit < 1)
        throw new RangeError('listDead: "limit" must be an integer >= 1');
      const { rows } = await db.query(sql.listDead, [afterSeq, limit]);
      return rows.map((row) => ({
        id: row.id as string,
        seq: String(row.seq),
        topic: row.topic as string,
        key: row.key as string,
        type: row.type as string,
        payload: row.payload as JsonValue,
        headers: row.headers as Record<string, string>,
        attempts: row.attempts as number,
        failures: row.failures as number,
        lastError: row.last_error as string | null,
        createdAt: row.created_at as Date,
      }));
    },
    async requeueDead(db, { ids } = {}) {
      const result = await db.query(sql.requeueDead, [ids === undefined ? null : [...ids]]);
      return result.rowCount ?? 0;
    },
    async discardDead(db, { ids }) {
      if (!Array.isArray(ids)) throw new TypeError('discardDead: "ids" must be an array of message ids');
      const result = await db.query(sql.discardDead, [[...ids]]);
      return result.rowCount ?? 0;
    },
    async cleanup(db, { retentionMs, batchSize = 1000 }) {
      if (!Number.isFinite(retentionMs) || retentionMs < 0) {
        throw new RangeError('cleanup: "retentionMs" must be a number of ms >= 0');
      }
      let deleted = 0;
      for (;;) {
        const result = await db.query(sql.cleanup, [retentionMs, batchSize]);
        const n = result.rowCount ?? 0;
        deleted += n;
        if (n < batchSize) return deleted;
      }
    },
    async stats(db) {
      const { rows } = await db.query(sql.stats);
      const row = rows[0] ?? {};
      return {
        pending: Number(row.pending ?? 0),
        dead: Number(row.dead ?? 0),
        lagMs: Math.max(0, Number(row.lag_ms ?? 0)),
      };
    },
  };
  internals.set(box, {
    table,
    sql,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  });
  return box;
}

/**
 * The DDL of the outbox table and its indexes, for your own migration tool (`migrate()` applies the same).
 * @example
 * await pool.query(outboxSchema({ table: 'billing.oncely_outbox' }));
 */
export function outboxSchema(options: { table?: string } = {}): string {
  const table = parseTableName(options.table ?? OUTBOX_DEFAULTS.table);
  if (typeof table === 'string') throw invalid(`outboxSchema: "table" ${table}`);
  return schemaSql(table);
}

export function invalid(detail: string): OncelyError {
  return new OncelyError('ERR_ONCELY_INVALID_OPTION', detail);
}
