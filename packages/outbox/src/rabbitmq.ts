/**
 * @oncely/outbox/rabbitmq: the RabbitMQ publisher, on an amqplib confirm channel. Every message is
 * published `mandatory`, with its outbox id as `messageId`: a message no queue is bound for comes back
 * (basic.return) and is a failure for that message, never a silent loss. RabbitMQ has no dedup of its
 * own: a republish after a crash reaches the queue twice, with the same `messageId`, and the consumer's
 * inbox absorbs it.
 */
import type { ConfirmChannel, Message } from 'amqplib';
import { AMQP_KEY_HEADER, CONTENT_TYPE } from './envelope.ts';
import type { OutboxMessage } from './message.ts';
import { invalid } from './outbox.ts';
import { abortReason, type Publisher, type PublishResult } from './publisher.ts';

/** Anything that opens confirm channels: an amqplib `ChannelModel`, or a recovering one (`{ recovery: true }`). */
export interface AmqpConnection {
  createConfirmChannel(): Promise<ConfirmChannel>;
}

/** Options of `rabbitMqPublisher()`. */
export interface RabbitMqPublisherOptions {
  /**
   * The connection to open the publisher's confirm channel on: `await amqp.connect(url, { recovery: true })`
   * recommended, so that after a broken connection the next batch gets a channel on the new one.
   * Never closed by the publisher.
   */
  connection: AmqpConnection;
  /** The exchange to publish to, or a function of the message; the routing key is the topic. @default '' (the default exchange: topic = queue name) */
  exchange?: string | ((message: OutboxMessage) => string);
  /** Persistent messages (delivery mode 2), so a durable queue keeps them across a broker restart. @default true */
  persistent?: boolean;
}

/** Every default of `rabbitMqPublisher()`. */
export const RABBITMQ_PUBLISHER_DEFAULTS = Object.freeze({ exchange: '', persistent: true });

/** A RabbitMQ publisher; `close()` closes its channel (not the connection). */
export interface RabbitMqPublisher extends Publisher {
  close(): Promise<void>;
}

/**
 * A publisher to RabbitMQ: routing key = topic, `messageId` = message id, `type` = type, header
 * `oncely-key` = key, `mandatory: true`. Resolves per message once the broker confirmed (or returned,
 * or nacked) it.
 * @example
 * const connection = await amqp.connect('amqp://127.0.0.1', { recovery: true });
 * const publisher = rabbitMqPublisher({ connection, exchange: 'orders' });
 */
export function rabbitMqPublisher(options: RabbitMqPublisherOptions): RabbitMqPublisher {
  if (typeof options !== 'object' || options === null) {
    throw invalid('rabbitMqPublisher() takes an options object: rabbitMqPublisher({ connection })');
  }
  for (const name of Object.keys(options)) {
    if (!['connection', 'exchange', 'persistent'].includes(name)) {
      throw invalid(`rabbitMqPublisher: unknown option "${name}"`);
    }
  }
  const { connection } = options;
  if (typeof connection?.createConfirmChannel !== 'function') {
    throw invalid('rabbitMqPublisher: "connection" must be an amqplib connection (createConfirmChannel())');
  }
  const exchange = options.exchange ?? RABBITMQ_PUBLISHER_DEFAULTS.exchange;
  if (typeof exchange !== 'string' && typeof exchange !== 'function') {
    throw invalid('rabbitMqPublisher: "exchange" must be a string or a function of the message');
  }
  const persistent = options.persistent ?? RABBITMQ_PUBLISHER_DEFAULTS.persistent;
  const exchangeOf = typeof exchange === 'string' ? () => exchange : exchange;

  /** The open channel, or the promise of one; dropped when it closes, so the next batch opens another. */
  let channel: Promise<Channel> | undefined;

  interface Channel {
    ch: ConfirmChannel;
    /** Returned (unroutable) messages by id, until their confirmation arrives. */
    returned: Map<string, string>;
    closed: Promise<Error>;
  }

  const open = (): Promise<Channel> => {
    const opening = connection.createConfirmChannel().then((ch) => {
      const returned = new Map<string, string>();
      // RabbitMQ sends basic.return before the basic.ack of the same message, on the same channel,
      // so by the time the confirmation callback runs the return (if any) has been recorded.
      ch.on('return', (message: Message) => {
        const id = message.properties.messageId as string | undefined;
        if (id !== undefined) {
          const {
            exchange: ex,
            routingKey,
            replyCode,
            replyText,
          } = message.fields as unknown as Record<string, unknown>;
          returned.set(
            id,
            `unroutable: exchange "${String(ex)}" routes routing key "${String(routingKey)}" to no queue ` +
              `(${String(replyCode)} ${String(replyText)})`,
          );
        }
      });
      const closed = new Promise<Error>((resolve) => {
        let reason: Error | undefined;
        // Without an 'error' listener a channel error (e.g. publishing to a missing exchange) would be
        // thrown as an unhandled 'error' event; here it only ends this channel.
        ch.on('error', (error: Error) => {
          reason = error;
        });
        ch.on('close', () => {
          if (channel === opening) channel = undefined;
          resolve(reason ?? new Error('the AMQP channel closed'));
        });
      });
      return { ch, returned, closed };
    });
    opening.catch(() => {
      if (channel === opening) channel = undefined;
    });
    channel = opening;
    return opening;
  };

  return {
    async publish(messages, { signal }) {
      if (signal.aborted) throw abortReason(signal);
      let aborted: (() => void) | undefined;
      const abort = new Promise<'aborted'>((resolve) => {
        aborted = () => resolve('aborted');
        signal.addEventListener('abort', aborted, { once: true });
      });
      try {
        // Opening may wait for a recovering connection to come back: bounded by the relay's signal.
        const opened = await Promise.race([channel ?? open(), abort]);
        if (opened === 'aborted') throw abortReason(signal);
        const { ch, returned, closed } = opened;
        const late = (): PublishResult => ({ ok: false, error: abortReason(signal), transient: true });
        const answers: Array<Promise<PublishResult>> = [];
        for (const message of messages) {
          if (signal.aborted) {
            answers.push(Promise.resolve(late()));
            continue;
          }
          let flowing = true;
          answers.push(
            new Promise<PublishResult>((resolve) => {
              const headers: Record<string, string> = { ...message.headers, [AMQP_KEY_HEADER]: message.key };
              try {
                flowing = ch.publish(
                  exchangeOf(message),
                  message.topic,
                  Buffer.from(message.body),
                  {
                    messageId: message.id,
                    type: message.type,
                    contentType: CONTENT_TYPE,
                    headers,
                    persistent,
                    mandatory: true,
                    timestamp: Math.floor(message.createdAt.getTime() / 1000),
                  },
                  (error: unknown) => {
                    const unroutable = returned.get(message.id);
                    returned.delete(message.id);
                    if (error) {
                      // A nack (the broker could not take it: e.g. a queue's reject-publish overflow) or
                      // the channel closing before the confirmation (amqplib then calls back every
                      // unconfirmed publish with an error): neither is the message's fault.
                      resolve({
                        ok: false,
                        error: error instanceof Error ? error : new Error(String(error)),
                        transient: true,
                      });
                    } else if (unroutable !== undefined) resolve({ ok: false, error: new Error(unroutable) });
                    else resolve({ ok: true });
                  },
                );
              } catch (error) {
                // Publishing on a channel that closed meanwhile throws at once (IllegalOperationError).
                resolve({
                  ok: false,
                  error: error instanceof Error ? error : new Error(String(error)),
                  transient: true,
                });
              }
            }),
          );
          // The channel's write buffer is full: let it drain before writing more, as a stream would.
          if (!flowing) {
            await Promise.race([new Promise((resolve) => ch.once('drain', resolve)), abort, closed]);
          }
        }
        // Each message answers on its own: confirmations that came before the deadline stand, the
        // rest are transient (their publish may still land: the consumer's inbox absorbs the repeat).
        return await Promise.all(answers.map((answer) => Promise.race([answer, abort.then(late)])));
      } finally {
        signal.removeEventListener('abort', aborted!);
      }
    },
    async close() {
      const current = channel;
      channel = undefined;
      if (current) await (await current.catch(() => undefined))?.ch.close().catch(() => {});
    },
  };
}
