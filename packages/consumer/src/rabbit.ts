/**
 * The RabbitMQ subscription: consumes a queue on an amqplib channel (manual acks), hands each
 * delivery to `handle`, and acks only once the outcome is durable.
 *
 * - A failed delivery is held for the backoff delay, then nack'd with requeue (RabbitMQ has no
 *   delayed nack; requeueing at once would spin). At `maxAttempts` it is nack'd WITHOUT requeue,
 *   which dead-letters it to the queue's `x-dead-letter-exchange`: declare one, or RabbitMQ drops it.
 * - The attempt number: a quorum queue counts deliveries itself (`x-delivery-count`), across
 *   processes and restarts; a classic queue does not, so the subscription also counts the failures
 *   it saw, per message id, in this process. Use quorum queues for a poison limit that holds when
 *   several processes share the queue or one restarts.
 * - An unreadable delivery (no `messageId`) or a mismatch is dead-lettered at once.
 *
 * The channel is yours: the subscription never closes it, and listens only to its `close`. Listen
 * to its `error` yourself (an unhandled `error` event ends the process, as any EventEmitter's does).
 */
import { OncelyError } from '@oncely/core';
import {
  deliveryPolicy,
  type Subscription,
  type SubscriptionOptions,
  slots,
  type Verdict,
} from './delivery.ts';
import { type Message, type RabbitMessageLike, rabbitMessage } from './message.ts';

/** The parts of an amqplib `ConsumeMessage` the subscription uses. */
export interface RabbitDelivery extends RabbitMessageLike {
  fields: { deliveryTag: number; redelivered: boolean };
}

/** The parts of an amqplib `Channel` the subscription uses (a `Channel` or `ConfirmChannel` is one). */
export interface RabbitChannelLike {
  consume(
    queue: string,
    onMessage: (delivery: RabbitDelivery | null) => void,
    options?: { noAck?: boolean; consumerTag?: string },
  ): Promise<{ consumerTag: string }>;
  cancel(consumerTag: string): Promise<unknown>;
  ack(delivery: RabbitDelivery): void;
  nack(delivery: RabbitDelivery, allUpTo?: boolean, requeue?: boolean): void;
  once(event: 'close', listener: () => void): unknown;
  removeListener(event: 'close', listener: () => void): unknown;
}

/** Options of `consumeRabbit()`: a channel and a queue plus the shared subscription options. */
export interface RabbitSubscriptionOptions extends SubscriptionOptions {
  /** An open channel: `await connection.createChannel()`. Set its prefetch to bound what it sends ahead. */
  channel: RabbitChannelLike;
  /** The queue to consume. Give it an `x-dead-letter-exchange` for poison messages. */
  queue: string;
  /** The consumer tag; the broker picks one when not given. @default the broker's */
  consumerTag?: string;
}

const OWN: ReadonlySet<string> = new Set(['channel', 'queue', 'consumerTag']);
// Failures counted per message id in this process (for classic queues): bounded, oldest first out.
const MAX_COUNTED = 10_000;
const DELIVERY_COUNT = 'x-delivery-count';

/**
 * Consume a RabbitMQ queue idempotently.
 * @example
 * const channel = await connection.createChannel();
 * await channel.prefetch(10);
 * const sub = await consumeRabbit({
 *   channel,
 *   queue: 'billing',
 *   handle: (m) => box.handle(pool, m, (tx) => tx.query('INSERT INTO invoices ...')),
 * });
 * process.once('SIGTERM', () => sub.stop());
 */
export async function consumeRabbit(options: RabbitSubscriptionOptions): Promise<Subscription> {
  if (typeof options !== 'object' || options === null) {
    throw invalid('consumeRabbit() takes an options object: consumeRabbit({ channel, queue, handle })');
  }
  const { channel, queue } = options;
  if (typeof channel?.consume !== 'function' || typeof channel.nack !== 'function') {
    throw invalid('"channel" must be an open amqplib channel: await connection.createChannel()');
  }
  if (typeof queue !== 'string' || queue === '') throw invalid('"queue" must be a non-empty string');
  if (options.consumerTag !== undefined && typeof options.consumerTag !== 'string') {
    throw invalid('"consumerTag" must be a string');
  }
  const source = `rabbitmq:${queue}`;
  const policy = deliveryPolicy(options, source, OWN, 'consumeRabbit');
  const { emit } = policy;
  const limit = slots(policy.concurrency);
  const queued: RabbitDelivery[] = [];
  const delayed = new Set<{ timer: NodeJS.Timeout; fire: () => void }>();
  const failures = new Map<string, number>();
  let stopping = false;
  let channelOpen = true;
  let end: (error: Error | undefined) => void = () => {};
  const ended = new Promise<Error | undefined>((resolve) => {
    end = resolve;
  });

  const attemptOf = (message: Message<RabbitDelivery>): number => {
    const counted = message.raw.properties.headers?.[DELIVERY_COUNT];
    const byBroker = typeof counted === 'number' && Number.isInteger(counted) ? counted + 1 : 1;
    const attempt = Math.max(byBroker, (failures.get(message.id) ?? 0) + 1);
    failures.delete(message.id);
    failures.set(message.id, attempt);
    if (failures.size > MAX_COUNTED) failures.delete(failures.keys().next().value!);
    return attempt;
  };

  const send = (verdict: Verdict, act: () => void): void => {
    try {
      act();
    } catch (error) {
      // The channel closed under us: RabbitMQ requeues what was not acked, and the redelivery is a
      // duplicate (or runs again if nothing was recorded).
      emit({ type: 'ack_failed', source, messageId: verdict.messageId, error });
    }
  };

  function settle(delivery: RabbitDelivery, verdict: Verdict): void {
    if (verdict.kind === 'ack') {
      failures.delete(verdict.messageId);
      send(verdict, () => channel.ack(delivery));
    } else if (verdict.kind === 'dead_letter') {
      if (verdict.messageId !== undefined) failures.delete(verdict.messageId);
      send(verdict, () => channel.nack(delivery, false, false));
    } else if (stopping || verdict.delayMs === 0) {
      send(verdict, () => channel.nack(delivery, false, true));
    } else {
      // Hold the delivery (unacked, so no other consumer gets it) for the delay, then requeue it.
      const entry = {
        timer: setTimeout(() => entry.fire(), verdict.delayMs),
        fire: () => {
          clearTimeout(entry.timer);
          if (!delayed.delete(entry)) return;
          if (channelOpen) send(verdict, () => channel.nack(delivery, false, true));
        },
      };
      delayed.add(entry);
    }
  }

  async function deliver(delivery: RabbitDelivery): Promise<void> {
    let verdict: Verdict;
    try {
      verdict = await policy.decide(
        () => rabbitMessage(delivery),
        (message) => attemptOf(message as Message<RabbitDelivery>),
      );
    } catch (error) {
      // Not a handler failure (those are verdicts): an unexpected fault. Let the broker bring it back.
      verdict = { kind: 'redeliver', messageId: undefined, delayMs: 0 };
      emit({ type: 'ack_failed', source, error });
    }
    settle(delivery, verdict);
  }

  const pump = async (): Promise<void> => {
    while (queued.length > 0 && !stopping) {
      await limit.take();
      // Checked again after the wait: stopping gives the queued deliveries back itself.
      const delivery = stopping ? undefined : queued.shift();
      if (delivery === undefined) {
        limit.give();
        return;
      }
      void deliver(delivery).finally(() => limit.give());
    }
  };
  let pumping: Promise<void> = Promise.resolve();
  const onMessage = (delivery: RabbitDelivery | null): void => {
    if (delivery === null) {
      // The broker cancelled the consumer: the queue was deleted, or its node went away.
      void finish(new Error(`consumeRabbit: the broker cancelled the consumer of queue ${queue}`));
      return;
    }
    if (stopping) {
      send({ kind: 'redeliver', messageId: undefined, delayMs: 0 }, () =>
        channel.nack(delivery, false, true),
      );
      return;
    }
    queued.push(delivery);
    // One pump at a time, each picking up where the last left off.
    pumping = pumping.then(pump);
  };

  let finishing: Promise<void> | undefined;
  const finish = (error: Error | undefined): Promise<void> => {
    finishing ??= (async () => {
      stopping = true;
      if (channelOpen && error === undefined) {
        await channel.cancel(consumerTag).catch(() => {});
      }
      // Not started: back to the queue at once, for another process.
      for (const delivery of queued.splice(0)) {
        if (channelOpen) {
          send({ kind: 'redeliver', messageId: undefined, delayMs: 0 }, () =>
            channel.nack(delivery, false, true),
          );
        }
      }
      for (const entry of [...delayed]) entry.fire();
      await pumping;
      await limit.idle();
      channel.removeListener('close', onClose);
      emit({ type: 'stopped', source, ...(error ? { error } : {}) });
      end(error);
    })();
    return finishing;
  };
  const onClose = (): void => {
    channelOpen = false;
    void finish(new Error(`consumeRabbit: the channel consuming ${queue} closed`));
  };
  channel.once('close', onClose);

  let consumerTag: string;
  try {
    ({ consumerTag } = await channel.consume(queue, onMessage, {
      noAck: false,
      ...(options.consumerTag === undefined ? {} : { consumerTag: options.consumerTag }),
    }));
  } catch (error) {
    channel.removeListener('close', onClose);
    throw error;
  }
  options.signal?.addEventListener('abort', () => void finish(undefined), { once: true });
  if (options.signal?.aborted) void finish(undefined);
  return {
    async stop() {
      await finish(undefined);
    },
    closed: ended,
  };
}

function invalid(detail: string): OncelyError {
  return new OncelyError('ERR_ONCELY_INVALID_OPTION', `consumeRabbit: ${detail}`);
}
