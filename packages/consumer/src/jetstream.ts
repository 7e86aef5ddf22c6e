/**
 * The JetStream subscription: pulls from a consumer of `@nats-io/jetstream`, hands each delivery to
 * `handle`, and acks only once the outcome is durable (`ackAck`: the server confirmed the ack).
 *
 * - A failed delivery is nak'd with a delay (the server redelivers it then); at `maxAttempts`
 *   deliveries (the server's `deliveryCount`) it is terminated (`term`): the server stops
 *   redelivering it and publishes a MSG_TERMINATED advisory; the error is in the event.
 * - A delivery that is unreadable (no `Nats-Msg-Id`) or a mismatch is terminated at once.
 * - While a handler runs, the subscription tells the server it is `working()` every third of the
 *   consumer's `ack_wait`, so a slow handler is not redelivered to another process meanwhile.
 *
 * The consumer must be a pull consumer with `ack_policy: explicit` (checked when `info()` is
 * available). Give it `max_deliver: -1` (the default) or more than `maxAttempts`: a server limit
 * below it would stop redelivering a failing message without terminating it.
 */
import { OncelyError } from '@oncely/core';
import {
  deliveryPolicy,
  type Subscription,
  type SubscriptionOptions,
  slots,
  type Verdict,
} from './delivery.ts';
import { type JetStreamMessageLike, jetStreamMessage } from './message.ts';

/** The parts of a `JsMsg` the subscription uses. */
export interface JetStreamDelivery extends JetStreamMessageLike {
  info: { deliveryCount: number; stream: string; consumer: string };
  ackAck(options?: { timeout?: number }): Promise<boolean>;
  nak(millis?: number): void;
  term(reason?: string): void;
  working(): void;
}

/** What `consumer.consume()` resolves to: an async iterator of deliveries that can be closed. */
export interface JetStreamDeliveries extends AsyncIterable<JetStreamDelivery> {
  close(): Promise<unknown>;
}

/** A pull consumer (`await js.consumers.get(stream, name)`), as far as the subscription uses it. */
export interface JetStreamConsumerLike {
  consume(options?: { max_messages?: number }): Promise<JetStreamDeliveries>;
  info?(cached?: boolean): Promise<{
    name: string;
    stream_name: string;
    config: { ack_policy?: string; ack_wait?: number };
  }>;
}

/** Options of `consumeJetStream()`: a consumer plus the shared subscription options. */
export interface JetStreamSubscriptionOptions extends SubscriptionOptions {
  /** The pull consumer: `await jetstream(nc).consumers.get(stream, durableName)`. */
  consumer: JetStreamConsumerLike;
}

const OWN: ReadonlySet<string> = new Set(['consumer']);
const NANOS_PER_MS = 1_000_000;

/**
 * Consume a JetStream consumer idempotently.
 * @example
 * const sub = await consumeJetStream({
 *   consumer: await jetstream(nc).consumers.get('ORDERS', 'billing'),
 *   handle: (m) => box.handle(pool, m, (tx) => tx.query('INSERT INTO invoices ...')),
 * });
 * process.once('SIGTERM', () => sub.stop());
 */
export async function consumeJetStream(options: JetStreamSubscriptionOptions): Promise<Subscription> {
  if (typeof options !== 'object' || options === null) {
    throw invalid('consumeJetStream() takes an options object: consumeJetStream({ consumer, handle })');
  }
  const { consumer } = options;
  if (typeof consumer?.consume !== 'function') {
    throw invalid(
      '"consumer" must be a JetStream pull consumer: await jetstream(nc).consumers.get(stream, name)',
    );
  }
  const info = typeof consumer.info === 'function' ? await consumer.info(true) : undefined;
  if (info !== undefined && info.config.ack_policy !== undefined && info.config.ack_policy !== 'explicit') {
    throw invalid(
      `the consumer's ack_policy is "${info.config.ack_policy}"; an idempotent consumer acks each message ` +
        'once its outcome is durable, which needs ack_policy "explicit"',
    );
  }
  const source = info === undefined ? 'jetstream' : `jetstream:${info.stream_name}/${info.name}`;
  const policy = deliveryPolicy(options, source, OWN, 'consumeJetStream');
  const ackWaitMs = info?.config.ack_wait !== undefined ? info.config.ack_wait / NANOS_PER_MS : undefined;
  const { emit } = policy;

  const messages = await consumer.consume({ max_messages: policy.concurrency });
  const limit = slots(policy.concurrency);
  let stopping = false;

  async function settle(delivery: JetStreamDelivery, verdict: Verdict): Promise<void> {
    try {
      if (verdict.kind === 'ack') {
        if (!(await delivery.ackAck())) throw new Error('the server did not confirm the ack');
      } else if (verdict.kind === 'redeliver') {
        delivery.nak(verdict.delayMs);
      } else {
        // Without a reason: servers before 2.11 read `+TERM <reason>` as no ack at all, and would
        // redeliver the message forever. The reason is in the `dead_lettered` / `refused` event.
        delivery.term();
      }
    } catch (error) {
      // The server redelivers once ack_wait passes; the redelivery is then a duplicate (or runs
      // again if nothing was recorded), which is what the inbox is for.
      emit({ type: 'ack_failed', source, messageId: verdict.messageId, error });
    }
  }

  async function deliver(delivery: JetStreamDelivery): Promise<void> {
    // Keep the delivery ours while the handler runs: without it the server redelivers a slow
    // handler's message to another process after ack_wait (harmless, the inbox serialises it, but
    // wasted work).
    const beat =
      ackWaitMs !== undefined && ackWaitMs >= 3
        ? setInterval(() => {
            try {
              delivery.working();
            } catch {
              // The connection is gone: the server will redeliver; nothing to do here.
            }
          }, ackWaitMs / 3)
        : undefined;
    let verdict: Verdict;
    try {
      verdict = await policy.decide(
        () => jetStreamMessage(delivery),
        () => delivery.info.deliveryCount,
      );
    } catch (error) {
      // Not a handler failure (those are verdicts): an unexpected fault. Let the server bring it back.
      verdict = { kind: 'redeliver', messageId: undefined, delayMs: 0 };
      emit({ type: 'ack_failed', source, error });
    } finally {
      if (beat !== undefined) clearInterval(beat);
    }
    await settle(delivery, verdict);
  }

  const pump = (async (): Promise<Error | undefined> => {
    try {
      for await (const delivery of messages) {
        if (stopping) {
          // Buffered but not started: hand it back for another process at once.
          delivery.nak();
          continue;
        }
        await limit.take();
        if (stopping) {
          limit.give();
          delivery.nak();
          continue;
        }
        void deliver(delivery).finally(() => limit.give());
      }
      return undefined;
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    } finally {
      await limit.idle();
    }
  })();

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      await messages.close();
      await pump;
    })();
    return stopped;
  };
  const closed = pump.then((error) => {
    stopping = true;
    emit({ type: 'stopped', source, ...(error ? { error } : {}) });
    return error;
  });
  options.signal?.addEventListener('abort', () => void stop(), { once: true });
  if (options.signal?.aborted) void stop();
  return {
    async stop() {
      await stop();
      await closed;
    },
    closed,
  };
}

function invalid(detail: string): OncelyError {
  return new OncelyError('ERR_ONCELY_INVALID_OPTION', `consumeJetStream: ${detail}`);
}
