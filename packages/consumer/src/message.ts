/**
 * The message, as every part of the consumer sees it, and the adapters that read it from a broker's
 * delivery. The envelope is the contract with `@oncely/outbox`'s publishers (DESIGN §8):
 *
 * | field        | JetStream                 | RabbitMQ (AMQP 0-9-1)      |
 * |--------------|---------------------------|----------------------------|
 * | message id   | header `Nats-Msg-Id`      | property `messageId`       |
 * | type         | header `Oncely-Type`      | property `type`            |
 * | aggregate key| header `Oncely-Key`       | header `oncely-key`        |
 * | content type | `application/json`        | property `contentType`     |
 * | body         | the JSON payload's bytes  | the JSON payload's bytes   |
 * | other headers| NATS headers              | AMQP headers               |
 *
 * The id is what deduplication stands on, so a delivery without a usable one is refused (an
 * `OncelyError`), never handed on: processing it would be processing without dedup.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { canonicalJson, isOncelyError, isValidKey, OncelyError } from '@oncely/core';

/** One delivered message, broker-neutral. */
export interface Message<Raw = unknown> {
  /** The producer's message id (the outbox row's id): the deduplication key. 1–255 printable ASCII. */
  id: string;
  /** What happened (`order.paid`); '' when the producer sent none. */
  type: string;
  /** The aggregate key the producer ordered by (`order_123`), when it sent one. */
  key: string | undefined;
  /** The further headers, values as text; the envelope's own fields are not repeated here. */
  headers: Readonly<Record<string, string>>;
  /** The body, parsed from JSON. */
  payload: unknown;
  /** The broker's delivery as received (a JetStream `JsMsg`, an amqplib `ConsumeMessage`). */
  raw: Raw;
}

/** The JetStream header names of the envelope. */
export const NATS_HEADERS = Object.freeze({
  id: 'Nats-Msg-Id',
  type: 'Oncely-Type',
  key: 'Oncely-Key',
  contentType: 'Content-Type',
});

/** The AMQP header that carries the aggregate key (id and type are message properties). */
export const AMQP_KEY_HEADER = 'oncely-key';

/** The parts of a JetStream `JsMsg` the adapter reads (a `JsMsg` of `@nats-io/jetstream` is one). */
export interface JetStreamMessageLike {
  data: Uint8Array;
  headers?: Iterable<[string, string[]]> | undefined;
}

/** The parts of an amqplib `ConsumeMessage` the adapter reads. */
export interface RabbitMessageLike {
  content: Uint8Array;
  properties: {
    messageId?: unknown;
    type?: unknown;
    contentType?: unknown;
    headers?: Record<string, unknown> | undefined;
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A JetStream delivery as a `Message`. Throws an `OncelyError` when it cannot be processed safely:
 * `ERR_ONCELY_KEY_MISSING` (no `Nats-Msg-Id`), `ERR_ONCELY_KEY_INVALID` (not 1–255 printable ASCII),
 * `ERR_ONCELY_BODY_AMBIGUOUS` (a content type other than JSON, or a body that is not JSON).
 * @example
 * const message = jetStreamMessage(await consumer.next());
 */
export function jetStreamMessage<Raw extends JetStreamMessageLike>(raw: Raw): Message<Raw> {
  const envelope = new Map<string, string>();
  const headers: Record<string, string> = {};
  const own = new Map(Object.values(NATS_HEADERS).map((name) => [name.toLowerCase(), name]));
  for (const [name, values] of raw.headers ?? []) {
    const value = values[0] ?? '';
    const field = own.get(name.toLowerCase());
    if (field === undefined) headers[name] = value;
    else if (!envelope.has(field)) envelope.set(field, value);
  }
  return {
    id: checkedId(envelope.get(NATS_HEADERS.id), `header ${NATS_HEADERS.id}`),
    type: envelope.get(NATS_HEADERS.type) ?? '',
    key: envelope.get(NATS_HEADERS.key),
    headers,
    payload: jsonBody(raw.data, envelope.get(NATS_HEADERS.contentType)),
    raw,
  };
}

/**
 * An amqplib delivery as a `Message`. Throws like `jetStreamMessage` (the id is the `messageId`
 * property). Header values that are not text are given as text: numbers and booleans as written,
 * byte strings as UTF-8, tables and arrays (`x-death`) as JSON.
 * @example
 * channel.consume(queue, (delivery) => delivery && handle(rabbitMessage(delivery)));
 */
export function rabbitMessage<Raw extends RabbitMessageLike>(raw: Raw): Message<Raw> {
  const { properties } = raw;
  const headers: Record<string, string> = {};
  let key: string | undefined;
  for (const [name, value] of Object.entries(properties.headers ?? {})) {
    if (value === undefined) continue;
    if (name.toLowerCase() === AMQP_KEY_HEADER) key ??= headerText(value);
    else headers[name] = headerText(value);
  }
  const contentType = properties.contentType;
  return {
    id: checkedId(properties.messageId, 'property messageId'),
    type: typeof properties.type === 'string' ? properties.type : '',
    key,
    headers,
    payload: jsonBody(raw.content, typeof contentType === 'string' ? contentType : undefined),
    raw,
  };
}

/**
 * The payload hash: sha256 over the message type and the canonical JSON of the payload (sorted keys,
 * no insignificant whitespace), hex. A redelivery hashes the same; the same id with another type or
 * payload does not, and is refused as a mismatch. It is the inbox's `payload_hash` and the engine's
 * fingerprint.
 * @example
 * payloadHash({ type: 'order.paid', payload: { order: 'o_1', amount: 500 } });
 */
export function payloadHash(message: Pick<Message, 'type' | 'payload'>): string {
  const text = JSON.stringify(message.payload);
  // JSON.stringify gives undefined for undefined and functions: no JSON value, nothing to deliver.
  const canonical = text === undefined ? undefined : canonicalJson(text);
  if (canonical === undefined) {
    throw new OncelyError('ERR_ONCELY_BODY_AMBIGUOUS', 'payloadHash: the payload is not a JSON value');
  }
  const hash = createHash('sha256');
  hash.update('oncely-message-v1\n');
  for (const part of [message.type, canonical]) {
    const bytes = Buffer.from(part, 'utf8');
    hash.update(`${bytes.length}:`);
    hash.update(bytes);
    hash.update('\n');
  }
  return hash.digest('hex');
}

/** The message's id, checked: what every entry point requires before it deduplicates on it. */
export function checkedId(id: unknown, where = 'id'): string {
  if (id === undefined || id === null || id === '') {
    throw new OncelyError(
      'ERR_ONCELY_KEY_MISSING',
      `The message has no id (${where}): it cannot be deduplicated, so it is not processed. ` +
        'Publish every message with its outbox id as the message id.',
    );
  }
  if (typeof id !== 'string' || !isValidKey(id)) {
    throw new OncelyError(
      'ERR_ONCELY_KEY_INVALID',
      `The message id (${where}) must be 1 to 255 printable ASCII characters; it is not processed.`,
    );
  }
  return id;
}

/** True for the errors of a delivery that can never be processed safely (rather than a failed attempt). */
export function isRefusal(error: unknown): boolean {
  return (
    isOncelyError(error) &&
    (error.code === 'ERR_ONCELY_KEY_MISSING' ||
      error.code === 'ERR_ONCELY_KEY_INVALID' ||
      error.code === 'ERR_ONCELY_BODY_AMBIGUOUS')
  );
}

// `application/json`, or any `+json` type, parameters (charset) ignored; absent means JSON.
const JSON_TYPE = /^\s*(application\/json|[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+\+json)\s*(;.*)?$/i;

function jsonBody(data: Uint8Array, contentType: string | undefined): unknown {
  if (contentType !== undefined && contentType !== '' && !JSON_TYPE.test(contentType)) {
    throw new OncelyError(
      'ERR_ONCELY_BODY_AMBIGUOUS',
      `The message's content type is ${JSON.stringify(contentType)}; the envelope requires application/json.`,
    );
  }
  try {
    return JSON.parse(utf8.decode(data));
  } catch (error) {
    throw new OncelyError('ERR_ONCELY_BODY_AMBIGUOUS', 'The message body is not UTF-8 JSON.', {
      cause: error,
    });
  }
}

function headerText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  return JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) ?? '';
}
