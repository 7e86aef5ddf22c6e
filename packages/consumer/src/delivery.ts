/**
 * What a subscription does with one delivery, decided once for every broker: the JetStream and
 * RabbitMQ subscriptions only translate the decision into their broker's ack, nak and terminate.
 *
 *   unreadable (no id, bad id, not JSON) → dead-letter now, `refused` event; the handler never sees it
 *   processed / duplicate                → ack (only now: the outcome is durable)
 *   mismatch                             → dead-letter, `dead_lettered` (reason `mismatch`)
 *   busy                                 → redeliver after `retryAfterMs`; not a failed attempt
 *   handler threw, attempt < maxAttempts → redeliver after the backoff, `retry` event
 *   handler threw, attempt = maxAttempts → dead-letter, `dead_lettered` (reason `failed`): poison
 */
import { OncelyError } from '@oncely/core';
import { type ConsumerEventHandler, type DeadLetterReason, emitter } from './events.ts';
import { isRefusal, type Message } from './message.ts';
import type { Handle, HandleOutcome } from './outcome.ts';

/** The options every subscription shares. Every default is in `SUBSCRIPTION_DEFAULTS`. */
export interface SubscriptionOptions {
  /** Handles one message: `(m) => box.handle(pool, m, work)` or `(m) => mail.handle(m, work)`. */
  handle: Handle;
  /**
   * Deliveries of a message whose handler throws before it is given up (terminated on JetStream,
   * dead-lettered on RabbitMQ): the poison limit. `busy` redeliveries are not failures.
   * @default 5
   */
  maxAttempts?: number;
  /** Delay before the first redelivery of a failed message; it doubles per attempt. @default 1_000 */
  retryDelayMs?: number;
  /** The longest delay between two attempts. @default 30_000 */
  maxRetryDelayMs?: number;
  /**
   * Messages handled at once. 1 keeps the broker's order (per stream or queue); more trade it for
   * throughput. On RabbitMQ also set the channel's prefetch (`channel.prefetch(n)`), which bounds
   * what the broker sends ahead.
   * @default 1
   */
  concurrency?: number;
  /** Stops the subscription when aborted, like `stop()`. @default none */
  signal?: AbortSignal | undefined;
  /** Time source, epoch ms, for events. @default Date.now */
  clock?: () => number;
  /** Deliveries: `refused`, `retry`, `dead_lettered`, `ack_failed`, `stopped`. @default none */
  onEvent?: ConsumerEventHandler | undefined;
}

/**
 * Every default of the subscriptions.
 * @example
 * consumeJetStream({ consumer, handle, maxAttempts: 2 * SUBSCRIPTION_DEFAULTS.maxAttempts });
 */
export const SUBSCRIPTION_DEFAULTS = Object.freeze({
  maxAttempts: 5,
  retryDelayMs: 1_000,
  maxRetryDelayMs: 30_000,
  concurrency: 1,
  clock: (): number => Date.now(),
});

/** A running subscription. */
export interface Subscription {
  /**
   * Stop taking messages, let the ones being handled finish and be acked (or nak'd), give back the
   * ones not started, and resolve. Safe to call twice.
   */
  stop(): Promise<void>;
  /** Resolves when the subscription has ended: with `undefined` after `stop()`, or the error that ended it. */
  readonly closed: Promise<Error | undefined>;
}

/** What to do with a delivery. */
export type Verdict =
  | { kind: 'ack'; messageId: string }
  | { kind: 'redeliver'; messageId: string | undefined; delayMs: number }
  | { kind: 'dead_letter'; messageId: string | undefined; reason: DeadLetterReason; error: unknown };

export interface DeliveryPolicy {
  readonly concurrency: number;
  /** Decide about one delivery. `attemptOf` says which delivery of the message this is (1 = first). */
  decide(read: () => Message, attemptOf: (message: Message) => number): Promise<Verdict>;
  emit: ReturnType<typeof emitter>;
}

const MAX_MS = 2 ** 31 - 1;

/** Validate the shared options (after the broker-specific ones were taken out). */
export function deliveryPolicy(
  options: SubscriptionOptions,
  source: string,
  own: ReadonlySet<string>,
  where: string,
): DeliveryPolicy {
  const invalid = (detail: string): OncelyError =>
    new OncelyError('ERR_ONCELY_INVALID_OPTION', `${where}: ${detail}`);
  for (const name of Object.keys(options)) {
    if (!own.has(name) && !SHARED.has(name)) throw invalid(`unknown option "${name}"`);
  }
  if (typeof options.handle !== 'function') {
    throw invalid('"handle" must be a function of a message: (m) => box.handle(pool, m, work)');
  }
  const integer = (name: 'maxAttempts' | 'retryDelayMs' | 'maxRetryDelayMs' | 'concurrency', min: number) => {
    const value = options[name] ?? SUBSCRIPTION_DEFAULTS[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_MS) {
      throw invalid(`"${name}" must be an integer from ${min} to ${MAX_MS}, got ${String(value)}`);
    }
    return value;
  };
  const maxAttempts = integer('maxAttempts', 1);
  const retryDelayMs = integer('retryDelayMs', 0);
  const maxRetryDelayMs = integer('maxRetryDelayMs', 0);
  const concurrency = integer('concurrency', 1);
  const clock = options.clock ?? SUBSCRIPTION_DEFAULTS.clock;
  if (typeof clock !== 'function') throw invalid('"clock" must be a function returning epoch milliseconds');
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
    throw invalid('"onEvent" must be a function');
  }
  const emit = emitter(options.onEvent, () => Math.floor(clock()));
  const { handle } = options;

  const backoff = (attempt: number): number =>
    Math.min(maxRetryDelayMs, retryDelayMs * 2 ** Math.min(attempt - 1, 30));

  return {
    concurrency,
    emit,
    async decide(read, attemptOf) {
      let message: Message;
      try {
        message = read();
      } catch (error) {
        if (!isRefusal(error)) throw error;
        emit({ type: 'refused', source, error });
        return { kind: 'dead_letter', messageId: undefined, reason: 'refused', error };
      }
      const messageId = message.id;
      let outcome: HandleOutcome<unknown>;
      try {
        outcome = await handle(message);
        if (typeof outcome !== 'object' || outcome === null || typeof outcome.status !== 'string') {
          throw new TypeError(
            `${where}: "handle" must resolve with the outcome of box.handle or mail.handle`,
          );
        }
      } catch (error) {
        if (isRefusal(error)) {
          emit({ type: 'refused', source, messageId, error });
          return { kind: 'dead_letter', messageId, reason: 'refused', error };
        }
        const attempt = attemptOf(message);
        if (attempt >= maxAttempts) {
          emit({ type: 'dead_lettered', source, messageId, attempt, reason: 'failed', error });
          return { kind: 'dead_letter', messageId, reason: 'failed', error };
        }
        const delayMs = backoff(attempt);
        emit({ type: 'retry', source, messageId, attempt, delayMs, error });
        return { kind: 'redeliver', messageId, delayMs };
      }
      switch (outcome.status) {
        case 'processed':
        case 'duplicate':
          return { kind: 'ack', messageId };
        case 'mismatch':
          emit({ type: 'dead_lettered', source, messageId, reason: 'mismatch', error: outcome.error });
          return { kind: 'dead_letter', messageId, reason: 'mismatch', error: outcome.error };
        case 'busy':
          return { kind: 'redeliver', messageId, delayMs: outcome.retryAfterMs };
        default:
          throw new TypeError(`${where}: unknown outcome status ${JSON.stringify(outcome satisfies never)}`);
      }
    },
  };
}

const SHARED: ReadonlySet<string> = new Set<keyof SubscriptionOptions>([
  'handle',
  'maxAttempts',
  'retryDelayMs',
  'maxRetryDelayMs',
  'concurrency',
  'signal',
  'clock',
  'onEvent',
]);

/** At most `size` tasks at once; `idle()` resolves when none runs. */
export function slots(size: number) {
  let running = 0;
  const waiting: Array<() => void> = [];
  const idle: Array<() => void> = [];
  return {
    async take(): Promise<void> {
      if (running < size) {
        running++;
        return;
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    },
    give(): void {
      const next = waiting.shift();
      if (next) {
        next(); // the slot passes straight to the next task
        return;
      }
      running--;
      if (running === 0) for (const wake of idle.splice(0)) wake();
    },
    idle(): Promise<void> {
      return running === 0 ? Promise.resolve() : new Promise<void>((resolve) => idle.push(resolve));
    },
  };
}
