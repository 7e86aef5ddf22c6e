/**
 * The orchestrator. Every transition of a saga is one PostgreSQL transaction that locks the saga's
 * row, decides, rewrites the row and adds the next command to the outbox: so the state and the
 * command commit together or not at all, and a crash anywhere leaves either the old state (the reply
 * is redelivered, the sweeper finds the deadline) or the new state with its command in the outbox
 * (the relay publishes it, whenever it next runs).
 *
 *   start(tx)        INSERT row → run local steps → outbox.add(command of the first remote step)
 *   reply            inbox row (dedup by message id) → lock row → stale? ignore : advance → next command
 *   sweep            rows past their deadline: a reply that did not come (timeout) or a retry now due
 *
 * A reply is applied only when it is for the step, phase and attempt the saga waits on, so a
 * duplicate that got past the inbox (another id for the same answer) or a late answer to an attempt
 * already given up is recorded as stale and changes nothing. Failure before the pivot, or at it,
 * turns the saga around: the completed compensatable steps are compensated in reverse, each once
 * (a compensation is retried until it succeeds, with its own key per attempt). Failure after the
 * pivot is retried forward with a new attempt and never compensated.
 */
import type { HandleOutcome, Inbox, Message } from '@oncely/consumer';
import type { JsonValue, Outbox } from '@oncely/outbox';
import {
  invalid,
  type StepAction,
  type StepContext,
  type StepDefinition,
  type StepKind,
  validateSteps,
} from './definition.ts';
import type { PgPool, PgPoolClient, PgQueryable } from './pg-types.ts';
import { commandHeaders, replyBody, type SagaPhase, sagaCommand } from './protocol.ts';
import { migrationSql, schemaSql, type TableName, tableName } from './schema.ts';

/** Where a saga is. `stuck` needs an operator: a retriable step or a compensation ran out of attempts. */
export type SagaStatus = 'running' | 'compensating' | 'completed' | 'compensated' | 'stuck';

/** One line of a saga's history. */
export interface SagaHistoryEntry {
  /** Epoch ms (the saga's clock). */
  at: number;
  event:
    | 'started'
    | 'sent'
    | 'resent'
    | 'succeeded'
    | 'failed'
    | 'timed_out'
    | 'retry_scheduled'
    | 'stale_reply'
    | 'compensating'
    | 'completed'
    | 'compensated'
    | 'stuck';
  step?: string;
  phase?: SagaPhase;
  attempt?: number;
  /** The idempotency key of a command sent, the error of a failure. */
  detail?: string;
}

/** What failed, and how. */
export interface SagaFailure {
  step: string;
  phase: SagaPhase;
  reason: 'failed' | 'timeout' | 'attempts_exhausted';
  error: string;
  at: number;
}

/** A saga's state, as `get()` and `list()` return it. */
export interface SagaState {
  saga: string;
  id: string;
  status: SagaStatus;
  /** The step being run or compensated; null once completed or compensated. */
  currentStep: string | null;
  phase: SagaPhase;
  attempt: number;
  /** What the saga waits for: a reply to a command, a retry's due time, or nothing (terminal). */
  waiting: 'reply' | 'retry' | null;
  /** When the sweeper acts on it (epoch ms). */
  deadline: number | null;
  data: JsonValue;
  results: Record<string, JsonValue>;
  /** Steps whose action succeeded, in order. */
  completed: string[];
  /** Compensations still to run, next first. */
  toCompensate: string[];
  /** Compensations that ran, in the order they ran. */
  compensated: string[];
  failure: SagaFailure | null;
  history: SagaHistoryEntry[];
  createdAt: number;
  updatedAt: number;
}

/** What applying a reply did. */
export type ReplyOutcome =
  /** It was the answer the saga waited for: the saga moved on (and its next command is in the outbox). */
  | 'advanced'
  /** Not for the current step, phase or attempt (late, or a duplicate under another id): ignored. */
  | 'stale'
  /** No such saga, or another saga's reply. */
  | 'unknown';

/** Options of `saga()`. Every default is in `SAGA_DEFAULTS`. */
export interface SagaOptions {
  /** The saga's name, part of every key: 1–64 of `A-Z a-z 0-9 _ -`. */
  name: string;
  /** The steps, in order: compensatable*, pivot?, retriable*. */
  steps: readonly StepDefinition[];
  /** The outbox the commands go through (its table in the database the saga table is in). */
  outbox: Outbox;
  /** The consumer the replies go through: a duplicate reply is dropped before it is read. */
  inbox: Inbox;
  /** The topic participants reply to (the `Saga-Reply-To` header). */
  replyTopic: string;
  /** The state table, optionally schema-qualified. @default 'oncely_saga' */
  table?: string;
  /** How long a command waits for its reply before the sweeper calls it timed out. @default 30_000 */
  stepTimeoutMs?: number;
  /** Attempts of a retriable step or of a compensation before the saga is `stuck`. @default 10 */
  maxAttempts?: number;
  /** The delay before the second attempt, doubling per attempt (with up to 20% jitter). @default 1_000 */
  retryDelayMs?: number;
  /** @default 60_000 */
  maxRetryDelayMs?: number;
  /** Sagas per `sweep()` pass. @default 100 */
  sweepBatchSize?: number;
  /** Epoch ms: deadlines and history. @default Date.now */
  clock?: () => number;
}

/**
 * Every default of `saga()`.
 * @example
 * saga({ ...definition, stepTimeoutMs: 2 * SAGA_DEFAULTS.stepTimeoutMs });
 */
export const SAGA_DEFAULTS = Object.freeze({
  table: 'oncely_saga',
  stepTimeoutMs: 30_000,
  maxAttempts: 10,
  retryDelayMs: 1_000,
  maxRetryDelayMs: 60_000,
  sweepBatchSize: 100,
  clock: (): number => Date.now(),
});

/** A saga definition bound to its tables; see {@link saga}. */
export interface Saga {
  readonly name: string;
  readonly table: string;
  /** Create the state table if missing; safe from many processes at once. */
  migrate(db: PgQueryable): Promise<void>;
  /**
   * Start a saga in the caller's transaction (`tx` ran your BEGIN): the row, any leading local steps
   * and the first command commit with your own writes. A second start of the same id does nothing.
   * Call `outbox.notify()` after your COMMIT.
   */
  start(tx: PgQueryable, saga: { id: string; data: JsonValue }): Promise<{ started: boolean }>;
  /** Apply a reply delivery through the inbox, in a transaction of its own; resolves like `inbox.handle`. */
  handleReply(pool: PgPool, message: Message): Promise<HandleOutcome<ReplyOutcome>>;
  /** Apply a reply inside your own transaction (you deduplicate it, e.g. in your own `inbox.handle`). */
  applyReply(tx: PgQueryable, message: Pick<Message, 'headers' | 'payload'>): Promise<ReplyOutcome>;
  /** Act on sagas past their deadline (timeouts, retries due), each in its own transaction; resolves with the count. */
  sweep(pool: PgPool): Promise<number>;
  /** Run `sweep` every `intervalMs` until `stop()`. Errors go to `onError`. */
  startSweeper(options: { pool: PgPool; intervalMs?: number; onError?: (error: unknown) => void }): {
    stop(): Promise<void>;
  };
  get(db: PgQueryable, id: string): Promise<SagaState | undefined>;
  list(db: PgQueryable, options?: { status?: SagaStatus; limit?: number }): Promise<SagaState[]>;
}

const OPTION_NAMES = new Set<string>([
  'name',
  'steps',
  'outbox',
  'inbox',
  'replyTopic',
  'table',
  'stepTimeoutMs',
  'maxAttempts',
  'retryDelayMs',
  'maxRetryDelayMs',
  'sweepBatchSize',
  'clock',
]);
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const SAGA_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const TOPIC = /^[!-)+-=?-~]{1,255}$/;
const SAVEPOINT = 'oncely_saga_step';

/** The saga's row, as the transitions change it in memory before one UPDATE writes it back. */
interface Row {
  id: string;
  status: SagaStatus;
  step: number;
  phase: SagaPhase;
  attempt: number;
  sends: number;
  waiting: 'reply' | 'retry' | null;
  deadline: number | null;
  data: JsonValue;
  results: Record<string, JsonValue>;
  completed: string[];
  toCompensate: string[];
  compensated: string[];
  failure: SagaFailure | null;
  history: SagaHistoryEntry[];
  createdAt: number;
  updatedAt: number;
}

type StepOutcome = 'sent' | { ok: true; result: JsonValue } | { ok: false; error: string };

/**
 * An orchestrated saga on PostgreSQL.
 * @example
 * const order = saga({
 *   name: 'order', outbox: box, inbox: inbox({ consumer: 'order-saga', retentionMs: 14 * DAY }),
 *   replyTopic: 'orders.replies',
 *   steps: [
 *     { name: 'reserve', kind: 'compensatable',
 *       action: { command: (c) => ({ topic: 'stock.reserve', type: 'stock.reserve', payload: c.data }) },
 *       compensation: { command: (c) => ({ topic: 'stock.release', type: 'stock.release', payload: c.data }) } },
 *     { name: 'charge', kind: 'pivot', action: { command: (c) => ({ topic: 'payments.charge', type: 'charge', payload: c.data }) } },
 *     { name: 'ship', kind: 'retriable', action: { command: (c) => ({ topic: 'shipping.label', type: 'label', payload: c.data }) } },
 *   ],
 * });
 */
export function saga(options: SagaOptions): Saga {
  if (typeof options !== 'object' || options === null) throw invalid('saga() takes an options object');
  for (const key of Object.keys(options))
    if (!OPTION_NAMES.has(key)) throw invalid(`unknown option "${key}"`);
  const { name, outbox, inbox, replyTopic } = options;
  if (typeof name !== 'string' || !NAME.test(name)) throw invalid(`"name" must match ${NAME}`);
  if (typeof outbox?.add !== 'function') throw invalid('"outbox" must be an outbox made by outbox()');
  if (typeof inbox?.handle !== 'function') throw invalid('"inbox" must be an inbox made by inbox()');
  if (typeof replyTopic !== 'string' || !TOPIC.test(replyTopic))
    throw invalid('"replyTopic" must be a topic');
  const steps = validateSteps(options.steps);
  const table: TableName = tableName(options.table ?? SAGA_DEFAULTS.table);
  const stepTimeoutMs = positive(options, 'stepTimeoutMs');
  const maxAttempts = positive(options, 'maxAttempts');
  const retryDelayMs = positive(options, 'retryDelayMs');
  const maxRetryDelayMs = positive(options, 'maxRetryDelayMs');
  const sweepBatchSize = positive(options, 'sweepBatchSize');
  const clock = options.clock ?? SAGA_DEFAULTS.clock;
  if (typeof clock !== 'function') throw invalid('"clock" must be a function returning epoch ms');
  const indexOf = new Map(steps.map((step, index) => [step.name, index]));
  const kindOf = (step: string): StepKind => steps[indexOf.get(step)!]!.kind;
  const now = (): number => Math.floor(clock());

  const log = (row: Row, event: SagaHistoryEntry['event'], extra: Partial<SagaHistoryEntry> = {}): void => {
    row.history.push({ at: now(), event, ...extra });
  };

  /** saga:id:step, with the attempt where a new attempt must not be mistaken for the last one. */
  const keyOf = (row: Row, step: StepDefinition, phase: SagaPhase, attempt: number): string => {
    const base = `${name}:${row.id}:${step.name}`;
    if (phase === 'compensation')
      return attempt === 1 ? `${base}:compensate` : `${base}:compensate:${attempt}`;
    return step.kind === 'retriable' ? `${base}:${attempt}` : base;
  };

  const contextOf = (row: Row, step: StepDefinition, phase: SagaPhase): StepContext => ({
    sagaId: row.id,
    step: step.name,
    attempt: row.attempt,
    idempotencyKey: keyOf(row, step, phase, row.attempt),
    data: row.data,
    results: row.results,
  });

  const backoff = (attempt: number): number => {
    const base = Math.min(maxRetryDelayMs, retryDelayMs * 2 ** Math.max(0, attempt - 1));
    return Math.floor(base * (1 + Math.random() * 0.2));
  };

  /** Add the step's command to the outbox (same attempt, same key; a resend gets a fresh message id). */
  const send = async (
    tx: PgQueryable,
    row: Row,
    step: StepDefinition,
    phase: SagaPhase,
    action: Extract<StepAction, { command: unknown }>,
  ): Promise<void> => {
    const context = contextOf(row, step, phase);
    const command = action.command(context);
    row.sends += 1;
    await outbox.add(tx, {
      topic: command.topic,
      key: row.id,
      type: command.type,
      payload: command.payload,
      headers: {
        ...command.headers,
        ...commandHeaders({
          idempotencyKey: context.idempotencyKey,
          saga: name,
          sagaId: row.id,
          step: step.name,
          phase,
          attempt: row.attempt,
          replyTo: replyTopic,
        }),
      },
      id: `${context.idempotencyKey}#${row.sends}`,
    });
    row.waiting = 'reply';
    row.deadline = now() + (step.timeoutMs ?? stepTimeoutMs);
    log(row, row.sends === 1 ? 'sent' : 'resent', {
      step: step.name,
      phase,
      attempt: row.attempt,
      detail: context.idempotencyKey,
    });
  };

  const perform = async (
    tx: PgQueryable,
    row: Row,
    step: StepDefinition,
    phase: SagaPhase,
    action: StepAction,
  ): Promise<StepOutcome> => {
    if ('command' in action) {
      await send(tx, row, step, phase, action);
      return 'sent';
    }
    // A savepoint, so a local step that fails leaves none of its writes, but the saga's turn to
    // compensate still commits.
    await tx.query(`SAVEPOINT ${SAVEPOINT}`);
    try {
      const result = await action.local(tx, contextOf(row, step, phase));
      await tx.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      return { ok: true, result: result ?? null };
    } catch (error) {
      await tx.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      return { ok: false, error: errorText(error) };
    }
  };

  const retryOrStick = (row: Row, step: StepDefinition, phase: SagaPhase, error: string): void => {
    if (row.attempt >= (step.maxAttempts ?? maxAttempts)) {
      row.status = 'stuck';
      row.waiting = null;
      row.deadline = null;
      row.failure = { step: step.name, phase, reason: 'attempts_exhausted', error, at: now() };
      log(row, 'stuck', { step: step.name, phase, attempt: row.attempt, detail: error });
      return;
    }
    row.attempt += 1;
    row.sends = 0;
    row.waiting = 'retry';
    row.deadline = now() + backoff(row.attempt - 1);
    log(row, 'retry_scheduled', { step: step.name, phase, attempt: row.attempt });
  };

  /** A step's action failed for good (a failure reply, a local throw) or timed out. */
  const actionFailed = (
    row: Row,
    step: StepDefinition,
    reason: 'failed' | 'timeout',
    error: string,
  ): void => {
    log(row, reason === 'timeout' ? 'timed_out' : 'failed', {
      step: step.name,
      phase: 'action',
      attempt: row.attempt,
      detail: error,
    });
    if (step.kind === 'retriable') {
      retryOrStick(row, step, 'action', error);
      return;
    }
    row.failure = { step: step.name, phase: 'action', reason, error, at: now() };
    const undo = row.completed.filter((done) => kindOf(done) === 'compensatable').reverse();
    // A command that timed out may still have been carried out: its compensation runs too (the
    // participant finds nothing to undo under its key if it never ran it).
    if (reason === 'timeout' && step.kind === 'compensatable') undo.unshift(step.name);
    row.toCompensate = undo;
    row.status = 'compensating';
    row.phase = 'compensation';
    row.attempt = 1;
    row.sends = 0;
    row.waiting = null;
    row.deadline = null;
    log(row, 'compensating', { detail: undo.join(',') });
  };

  const succeeded = (row: Row, step: StepDefinition, result: JsonValue): void => {
    log(row, 'succeeded', { step: step.name, phase: row.phase, attempt: row.attempt });
    if (row.phase === 'action') {
      row.results[step.name] = result;
      row.completed.push(step.name);
      row.step += 1;
    } else {
      row.compensated.push(step.name);
      row.toCompensate.shift();
    }
    row.attempt = 1;
    row.sends = 0;
    row.waiting = null;
    row.deadline = null;
  };

  /** Run local steps and send the next command until the saga waits or ends. */
  const drive = async (tx: PgQueryable, row: Row): Promise<void> => {
    for (;;) {
      if (row.waiting !== null) return;
      if (row.status === 'running') {
        const step = steps[row.step];
        if (step === undefined) {
          row.status = 'completed';
          row.deadline = null;
          log(row, 'completed');
          return;
        }
        row.phase = 'action';
        const outcome = await perform(tx, row, step, 'action', step.action);
        if (outcome === 'sent') return;
        if (outcome.ok) succeeded(row, step, outcome.result);
        else actionFailed(row, step, 'failed', outcome.error);
      } else if (row.status === 'compensating') {
        const next = row.toCompensate[0];
        if (next === undefined) {
          row.status = 'compensated';
          row.deadline = null;
          log(row, 'compensated');
          return;
        }
        row.step = indexOf.get(next)!;
        const step = steps[row.step]!;
        const outcome = await perform(tx, row, step, 'compensation', step.compensation!);
        if (outcome === 'sent') return;
        if (outcome.ok) succeeded(row, step, outcome.result);
        else {
          log(row, 'failed', {
            step: step.name,
            phase: 'compensation',
            attempt: row.attempt,
            detail: outcome.error,
          });
          retryOrStick(row, step, 'compensation', outcome.error);
        }
      } else {
        return;
      }
    }
  };

  const load = async (tx: PgQueryable, id: string, lock: '' | 'FOR UPDATE' | 'FOR UPDATE SKIP LOCKED') => {
    const result = await tx.query(`SELECT * FROM ${table.sql} WHERE saga = $1 AND id = $2 ${lock}`, [
      name,
      id,
    ]);
    const found = result.rows[0];
    return found === undefined ? undefined : fromRecord(found);
  };

  const save = async (tx: PgQueryable, row: Row): Promise<void> => {
    row.updatedAt = now();
    await tx.query(
      `UPDATE ${table.sql} SET status = $3, step = $4, phase = $5, attempt = $6, sends = $7, waiting = $8,
         deadline = $9, results = $10, completed = $11, to_compensate = $12, compensated = $13, failure = $14,
         history = $15, updated_at = $16
       WHERE saga = $1 AND id = $2`,
      [
        name,
        row.id,
        row.status,
        row.step,
        row.phase,
        row.attempt,
        row.sends,
        row.waiting,
        row.deadline,
        JSON.stringify(row.results),
        JSON.stringify(row.completed),
        JSON.stringify(row.toCompensate),
        JSON.stringify(row.compensated),
        row.failure === null ? null : JSON.stringify(row.failure),
        JSON.stringify(row.history),
        row.updatedAt,
      ],
    );
  };

  const applyReply = async (
    tx: PgQueryable,
    message: Pick<Message, 'headers' | 'payload'>,
  ): Promise<ReplyOutcome> => {
    const command = sagaCommand(message);
    const body = replyBody(message.payload);
    if (command.saga !== name || body === undefined) return 'unknown';
    const row = await load(tx, command.sagaId, 'FOR UPDATE');
    if (row === undefined) return 'unknown';
    const step = steps[row.step];
    const current =
      row.waiting === 'reply' &&
      step?.name === command.step &&
      row.phase === command.phase &&
      row.attempt === command.attempt &&
      row.status === (command.phase === 'action' ? 'running' : 'compensating');
    if (!current || step === undefined) {
      log(row, 'stale_reply', { step: command.step, phase: command.phase, attempt: command.attempt });
      await save(tx, row);
      return 'stale';
    }
    row.waiting = null;
    row.deadline = null;
    if (body.ok) succeeded(row, step, body.result ?? null);
    else if (row.phase === 'action') actionFailed(row, step, 'failed', body.error);
    else {
      log(row, 'failed', {
        step: step.name,
        phase: 'compensation',
        attempt: row.attempt,
        detail: body.error,
      });
      retryOrStick(row, step, 'compensation', body.error);
    }
    await drive(tx, row);
    await save(tx, row);
    return 'advanced';
  };

  /** One saga past its deadline: a timed-out command, or a retry now due. */
  const due = async (tx: PgQueryable, id: string): Promise<boolean> => {
    const row = await load(tx, id, 'FOR UPDATE SKIP LOCKED');
    if (row === undefined || row.deadline === null || row.deadline > now()) return false;
    const step = steps[row.step]!;
    if (row.waiting === 'retry') {
      row.waiting = null;
      row.deadline = null;
    } else if (row.waiting === 'reply') {
      const action = row.phase === 'action' ? step.action : step.compensation!;
      if (row.phase === 'action' && step.kind !== 'retriable') {
        row.waiting = null;
        row.deadline = null;
        actionFailed(row, step, 'timeout', `no reply within ${step.timeoutMs ?? stepTimeoutMs} ms`);
      } else if ('command' in action) {
        // Retriable steps and compensations are not given up on a timeout: the same command is sent
        // again under the same key, which the participant deduplicates.
        log(row, 'timed_out', { step: step.name, phase: row.phase, attempt: row.attempt });
        await send(tx, row, step, row.phase, action);
      }
    }
    await drive(tx, row);
    await save(tx, row);
    return true;
  };

  const sweep = async (pool: PgPool): Promise<number> => {
    const { rows } = await pool.query(
      `SELECT id FROM ${table.sql} WHERE saga = $1 AND deadline <= $2 ORDER BY deadline LIMIT $3`,
      [name, now(), sweepBatchSize],
    );
    let count = 0;
    for (const { id } of rows) {
      if (await inTransaction(pool, (tx) => due(tx, id as string))) count += 1;
    }
    if (count > 0) outbox.notify();
    return count;
  };

  return {
    name,
    table: table.display,
    async migrate(db) {
      await db.query(migrationSql(table));
    },
    async start(tx, { id, data }) {
      if (typeof id !== 'string' || !SAGA_ID.test(id)) throw invalid(`saga id must match ${SAGA_ID}`);
      const at = now();
      const inserted = await tx.query(
        `INSERT INTO ${table.sql} (saga, id, status, step, phase, attempt, data, history, created_at, updated_at)
         VALUES ($1, $2, 'running', 0, 'action', 1, $3, '[]', $4, $4) ON CONFLICT (saga, id) DO NOTHING`,
        [name, id, JSON.stringify(data ?? null), at],
      );
      if ((inserted.rowCount ?? 0) === 0) return { started: false };
      const row = fromRecord({
        id,
        status: 'running',
        step: 0,
        phase: 'action',
        attempt: 1,
        sends: 0,
        waiting: null,
        deadline: null,
        data: data ?? null,
        results: {},
        completed: [],
        to_compensate: [],
        compensated: [],
        failure: null,
        history: [],
        created_at: at,
        updated_at: at,
      });
      log(row, 'started');
      await drive(tx, row);
      await save(tx, row);
      return { started: true };
    },
    async handleReply(pool, message) {
      const outcome = await inbox.handle(pool, message, (tx) => applyReply(tx, message));
      if (outcome.status === 'processed') outbox.notify();
      return outcome;
    },
    applyReply,
    sweep,
    startSweeper({ pool, intervalMs = 1000, onError }) {
      let stopped = false;
      let running: Promise<void> = Promise.resolve();
      let timer: NodeJS.Timeout | undefined;
      const tick = (): void => {
        running = sweep(pool)
          .then(
            () => {},
            (error: unknown) => onError?.(error),
          )
          .finally(() => {
            if (!stopped) timer = setTimeout(tick, intervalMs);
          });
      };
      timer = setTimeout(tick, intervalMs);
      return {
        async stop() {
          stopped = true;
          clearTimeout(timer);
          await running;
        },
      };
    },
    async get(db, id) {
      const row = await load(db, id, '');
      return row === undefined ? undefined : toState(name, steps, row);
    },
    async list(db, { status, limit = 1000 } = {}) {
      const { rows } = await db.query(
        `SELECT * FROM ${table.sql} WHERE saga = $1 AND ($2::text IS NULL OR status = $2)
         ORDER BY created_at, id LIMIT $3`,
        [name, status ?? null, limit],
      );
      return rows.map((record) => toState(name, steps, fromRecord(record)));
    },
  };
}

/**
 * The state table's DDL, for your own migration tool (`migrate()` applies the same).
 * @example
 * await sql.unsafe(sagaSchema({ table: 'orders.oncely_saga' }));
 */
export function sagaSchema(options: { table?: string } = {}): string {
  return schemaSql(tableName(options.table ?? SAGA_DEFAULTS.table));
}

function fromRecord(record: Record<string, unknown>): Row {
  const number = (value: unknown): number => Number(value);
  return {
    id: record.id as string,
    status: record.status as SagaStatus,
    step: number(record.step),
    phase: record.phase as SagaPhase,
    attempt: number(record.attempt),
    sends: number(record.sends ?? 0),
    waiting: (record.waiting ?? null) as Row['waiting'],
    deadline: record.deadline === null || record.deadline === undefined ? null : number(record.deadline),
    data: (record.data ?? null) as JsonValue,
    results: (record.results ?? {}) as Record<string, JsonValue>,
    completed: (record.completed ?? []) as string[],
    toCompensate: (record.to_compensate ?? []) as string[],
    compensated: (record.compensated ?? []) as string[],
    failure: (record.failure ?? null) as SagaFailure | null,
    history: (record.history ?? []) as SagaHistoryEntry[],
    createdAt: number(record.created_at),
    updatedAt: number(record.updated_at),
  };
}

function toState(name: string, steps: readonly StepDefinition[], row: Row): SagaState {
  const terminal = row.status === 'completed' || row.status === 'compensated';
  return {
    saga: name,
    id: row.id,
    status: row.status,
    currentStep: terminal ? null : (steps[row.step]?.name ?? null),
    phase: row.phase,
    attempt: row.attempt,
    waiting: row.waiting,
    deadline: row.deadline,
    data: row.data,
    results: row.results,
    completed: row.completed,
    toCompensate: row.toCompensate,
    compensated: row.compensated,
    failure: row.failure,
    history: row.history,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

async function inTransaction<T>(pool: PgPool, work: (tx: PgPoolClient) => Promise<T>): Promise<T> {
  const tx = await pool.connect();
  let broken: Error | undefined;
  try {
    await tx.query('BEGIN');
    const value = await work(tx);
    await tx.query('COMMIT');
    return value;
  } catch (error) {
    await tx.query('ROLLBACK').catch((rollbackError: unknown) => {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    });
    throw error;
  } finally {
    tx.release(broken);
  }
}

function positive(
  options: SagaOptions,
  key: 'stepTimeoutMs' | 'maxAttempts' | 'retryDelayMs' | 'maxRetryDelayMs' | 'sweepBatchSize',
): number {
  const value = options[key] ?? SAGA_DEFAULTS[key];
  if (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
    throw invalid(`"${key}" must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
