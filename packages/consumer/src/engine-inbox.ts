/**
 * Engine mode: the idempotent consumer for effects outside your database (an email, a call to a
 * payment provider), on the Oncely engine and any of its stores. The message id is the key, the
 * consumer name the scope, the payload hash the fingerprint, so the engine's rules carry over:
 *
 *   first delivery          → the work runs; its JSON result is recorded; `processed`.
 *   redelivery after that   → the recorded result is replayed, the work does not run; `duplicate`.
 *   same id, other payload  → `ERR_ONCELY_KEY_REUSED`: `mismatch` (an error event), not processed.
 *   redelivery while the first runs → `busy`: nak'd, redelivered after `retryAfterMs`, by when the
 *                             first has finished (then a `duplicate`) or died and its lease lapsed
 *                             (then it runs again, as after any crash). With the engine's
 *                             `concurrency: 'wait'`, it waits up to `maxWaitMs` for the first instead.
 *   work throws             → the key is freed and the error thrown: the delivery is retried.
 *
 * Why nak rather than wait by default: the redelivery holds a broker delivery and a consumer slot
 * while it waits, and the broker will bring it back anyway; nak'ing frees both and costs nothing,
 * since the first delivery's outcome is replayed when it comes back.
 *
 * The engine's one gap stays (DESIGN §2): if the process dies after the effect but before the
 * record is written, the lease lapses and a redelivery runs the effect again. Forward the message
 * id as the idempotency key of the effect itself (the provider's `Idempotency-Key`) to close it;
 * for writes to your own database, transactional mode (`inbox()`) has no such gap.
 */
import { type CommitOutcome, type Oncely, OncelyError, runResultOf, runResultResponse } from '@oncely/core';
import { type ConsumerEventHandler, emitter } from './events.ts';
import { checkedId, type Message, payloadHash } from './message.ts';
import type { BusyReason, HandleOutcome } from './outcome.ts';

/** Options of `engineInbox()`. */
export interface EngineInboxOptions {
  /** The engine: `createOncely({ store })` on any Oncely store shared by every consumer process. */
  oncely: Oncely;
  /** This consumer's name: the engine scope, so each consumer of a message runs it once on its own. */
  consumer: string;
  /** Decisions: `processed`, `duplicate`, `mismatch` (an error), `busy`. @default none */
  onEvent?: ConsumerEventHandler | undefined;
}

/** The work of one message, with the engine's signal (aborts if the lease is lost: stop). Returns a JSON value. */
export type EngineWork<M extends Message, T> = (message: M, signal: AbortSignal) => T | Promise<T>;

/** Engine mode's consumer, returned by `engineInbox()`. */
export interface EngineInbox {
  readonly consumer: string;
  /**
   * Run `work` at most once for this message and consumer. Resolves once its outcome is recorded in
   * the store (then ack); throws what `work` threw (the key is freed: nak), or an `OncelyError`
   * (`ERR_ONCELY_EXECUTION_TIMEOUT` past the engine's `maxExecutionMs`; a missing or unusable id).
   */
  handle<M extends Message, T>(message: M, work: EngineWork<M, T>): Promise<HandleOutcome<T>>;
}

const OPTION_NAMES: ReadonlySet<string> = new Set<keyof EngineInboxOptions>([
  'oncely',
  'consumer',
  'onEvent',
]);

/**
 * The idempotent consumer in engine mode, for effects outside the database.
 * @example
 * const mail = engineInbox({ oncely: createOncely({ store }), consumer: 'receipt-mail' });
 * const outcome = await mail.handle(message, async (m) => (await mailer.send(receiptFor(m.payload))).id);
 */
export function engineInbox(options: EngineInboxOptions): EngineInbox {
  if (typeof options !== 'object' || options === null) {
    throw invalid('engineInbox() takes an options object: engineInbox({ oncely, consumer })');
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw invalid(`unknown option "${name}"`);
  }
  const { oncely, consumer } = options;
  if (typeof oncely?.begin !== 'function' || typeof oncely.options !== 'object') {
    throw invalid('"oncely" must be an engine made by createOncely({ store })');
  }
  if (oncely.options.failOpen) {
    throw invalid(
      '"oncely" has failOpen: true, which runs work unrecorded when the store is down; a consumer ' +
        'never processes a message without deduplication. Use an engine without failOpen.',
    );
  }
  if (typeof consumer !== 'string' || consumer === '') {
    throw invalid('"consumer" must be a non-empty string: the scope this consumer deduplicates under');
  }
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
    throw invalid('"onEvent" must be a function');
  }
  const clock = () => Math.floor(oncely.options.clock());
  const emit = emitter(options.onEvent, clock);
  const retryAfterMs = oncely.options.retryAfterSeconds * 1000;

  const busy = <T>(messageId: string, reason: BusyReason, delayMs = retryAfterMs): HandleOutcome<T> => {
    emit({ type: 'busy', consumer, messageId, delayMs });
    return { status: 'busy', retryAfterMs: delayMs, reason };
  };

  return {
    consumer,
    async handle<M extends Message, T>(message: M, work: EngineWork<M, T>): Promise<HandleOutcome<T>> {
      const messageId = checkedId(message.id);
      const decision = await oncely.begin({
        scope: consumer,
        key: messageId,
        fingerprint: payloadHash(message),
      });
      if (decision.kind === 'replay') {
        emit({ type: 'duplicate', consumer, messageId });
        return { status: 'duplicate', value: runResultOf<T>(decision.response) };
      }
      if (decision.kind === 'reject') {
        const { error } = decision;
        switch (error.code) {
          case 'ERR_ONCELY_KEY_REUSED':
            emit({ type: 'mismatch', consumer, messageId, error });
            return { status: 'mismatch', error };
          case 'ERR_ONCELY_IN_PROGRESS':
            return busy(messageId, 'in_progress', (error.retryAfter ?? retryAfterMs / 1000) * 1000);
          case 'ERR_ONCELY_STORE_UNAVAILABLE':
            return busy(messageId, 'store_unavailable', (error.retryAfter ?? retryAfterMs / 1000) * 1000);
          case 'ERR_ONCELY_RESPONSE_NOT_STORED':
            // It ran to completion before; only its result was too large to keep.
            emit({ type: 'duplicate', consumer, messageId });
            return { status: 'duplicate', value: undefined };
          default:
            throw error;
        }
      }
      if (!decision.keeps(200)) {
        await decision.abort();
        throw invalid(
          "the engine's cache policy does not keep a 200, so no outcome would ever be recorded: use the default 'success-only'",
        );
      }
      let value: T;
      try {
        value = await work(message, decision.signal);
      } catch (error) {
        await decision.abort(error);
        throw error;
      }
      const outcome: CommitOutcome = await decision.commit(runResultResponse(value));
      switch (outcome) {
        case 'stored':
        case 'stored_without_body':
          emit({ type: 'processed', consumer, messageId });
          return { status: 'processed', value };
        case 'timed_out':
          throw new OncelyError(
            'ERR_ONCELY_EXECUTION_TIMEOUT',
            `The work for message ${JSON.stringify(messageId)} ran past the engine's maxExecutionMs; its outcome was not kept.`,
          );
        default:
          // 'pending': the store failed at completion and the engine keeps retrying it with the lease
          // held; 'lease_lost': another delivery took the key over. Either way the outcome is not
          // recorded under this delivery: acking now could lose the message, so let it come back,
          // when it replays (or runs, if the record never landed).
          return busy(messageId, 'not_recorded');
      }
    },
  };
}

function invalid(detail: string): OncelyError {
  return new OncelyError('ERR_ONCELY_INVALID_OPTION', `engineInbox: ${detail}`);
}
