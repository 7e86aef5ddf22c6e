/**
 * @oncely/outbox/nats: the NATS JetStream publisher. Every message goes out with its outbox id as
 * `Nats-Msg-Id`, so a republish (after a relay crash between publish and mark, or a timeout whose
 * publish did land) inside the stream's duplicate window is dropped by JetStream, and the PubAck says
 * `duplicate`. Beyond the window, or on another stream, the consumer's inbox is the dedup.
 */
import { type JetStreamClient, type JetStreamOptions, jetstream } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import {
  CONTENT_TYPE,
  NATS_CONTENT_TYPE_HEADER,
  NATS_KEY_HEADER,
  NATS_MSG_ID_HEADER,
  NATS_TYPE_HEADER,
} from './envelope.ts';
import type { OutboxMessage } from './message.ts';
import { invalid } from './outbox.ts';
import { abortReason, type Publisher, type PublishResult } from './publisher.ts';

/** Options of `jetStreamPublisher()`. */
export interface JetStreamPublisherOptions {
  /** A connected NATS connection (`connect()` of `@nats-io/transport-node`). Never closed by the publisher. */
  connection: NatsConnection;
  /** Options of the JetStream context (`domain`, `apiPrefix`). @default {} */
  jetstream?: JetStreamOptions;
  /**
   * Longest wait for one PubAck. The relay's `publishTimeoutMs` bounds the whole batch as well.
   * @default 5000
   */
  timeoutMs?: number;
}

/** Every default of `jetStreamPublisher()`. */
export const JETSTREAM_PUBLISHER_DEFAULTS = Object.freeze({ timeoutMs: 5000 });

/**
 * A publisher to NATS JetStream: subject = topic, `Nats-Msg-Id` = message id, plus the `Oncely-*`
 * headers of the envelope. The messages of a batch are pipelined on the connection; each answers with
 * its own PubAck.
 * @example
 * const nc = await connect({ servers: 'nats://127.0.0.1:4222' });
 * const publisher = jetStreamPublisher({ connection: nc });
 */
export function jetStreamPublisher(options: JetStreamPublisherOptions): Publisher {
  if (typeof options !== 'object' || options === null) {
    throw invalid('jetStreamPublisher() takes an options object: jetStreamPublisher({ connection })');
  }
  for (const name of Object.keys(options)) {
    if (!['connection', 'jetstream', 'timeoutMs'].includes(name)) {
      throw invalid(`jetStreamPublisher: unknown option "${name}"`);
    }
  }
  const { connection } = options;
  if (typeof connection?.request !== 'function') {
    throw invalid('jetStreamPublisher: "connection" must be a connected NatsConnection');
  }
  const timeoutMs = options.timeoutMs ?? JETSTREAM_PUBLISHER_DEFAULTS.timeoutMs;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    throw invalid(`jetStreamPublisher: "timeoutMs" must be an integer >= 1, got ${String(timeoutMs)}`);
  }
  const js: JetStreamClient = jetstream(connection, options.jetstream ?? {});

  async function publishOne(message: OutboxMessage): Promise<PublishResult> {
    try {
      const h = headers();
      for (const [name, value] of Object.entries(message.headers)) h.set(name, value);
      h.set(NATS_TYPE_HEADER, message.type);
      h.set(NATS_KEY_HEADER, message.key);
      h.set(NATS_CONTENT_TYPE_HEADER, CONTENT_TYPE);
      // msgID sets the Nats-Msg-Id header; the header is named here too so the contract is visible.
      h.set(NATS_MSG_ID_HEADER, message.id);
      const ack = await js.publish(message.topic, message.body, {
        msgID: message.id,
        headers: h,
        timeout: timeoutMs,
      });
      return { ok: true, duplicate: ack.duplicate };
    } catch (error) {
      return failure(message, error);
    }
  }

  return {
    async publish(messages, { signal }) {
      if (signal.aborted) throw abortReason(signal);
      // Every publish is started before any ack is awaited: one round trip for the batch, and the
      // subjects' order on the connection is the batch's order.
      const answers = messages.map(publishOne);
      let stop: (() => void) | undefined;
      const aborted = new Promise<'aborted'>((resolve) => {
        stop = () => resolve('aborted');
        signal.addEventListener('abort', stop, { once: true });
      });
      try {
        return await Promise.all(
          answers.map(async (answer) => {
            const result = await Promise.race([answer, aborted]);
            return result === 'aborted'
              ? { ok: false as const, error: abortReason(signal), transient: true }
              : result;
          }),
        );
      } finally {
        signal.removeEventListener('abort', stop!);
      }
    },
  };
}

// No connection, no answer in time, connection closing: the broker was not asked, or not heard.
const TRANSIENT = new Set([
  'TimeoutError',
  'ClosedConnectionError',
  'DrainingConnectionError',
  'ConnectionError',
]);

/**
 * Classify a failed publish. JetStream refusing the message (an API error in the PubAck) and "no
 * responders" (no stream captures the subject: the message is unroutable, as on RabbitMQ) count
 * toward the poison limit; timeouts and connection trouble are transient.
 */
function failure(message: OutboxMessage, error: unknown): PublishResult {
  const err = error instanceof Error ? error : new Error(String(error));
  const cause = err.cause as { name?: string; isNoResponders?: () => boolean } | undefined;
  const noResponders =
    (err.name === 'JetStreamNotEnabled' && cause?.name === 'RequestError' && cause.isNoResponders?.()) ||
    (err.name === 'RequestError' && (err as { isNoResponders?: () => boolean }).isNoResponders?.());
  if (noResponders) {
    return {
      ok: false,
      error: new Error(`no JetStream stream captures subject "${message.topic}" (no responders)`, {
        cause: err,
      }),
    };
  }
  if (TRANSIENT.has(err.name) || (err.name === 'RequestError' && !noResponders)) {
    return { ok: false, error: err, transient: true };
  }
  return { ok: false, error: err };
}
