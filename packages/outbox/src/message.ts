/**
 * What a producer adds and what a publisher gets. Everything a broker could refuse for its shape is
 * checked at `add()`, inside the producer's transaction, where a mistake fails loudly and at once,
 * rather than in the relay, where it would become a dead message minutes later.
 */
import { isReservedHeader } from './envelope.ts';
import { messageId } from './message-id.ts';

/** A JSON value: what a payload may hold. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A message to add, inside the caller's transaction. */
export interface NewMessage {
  /** NATS subject / AMQP routing key, e.g. `orders.paid`: printable ASCII, no spaces, no wildcards. */
  topic: string;
  /** Aggregate key, e.g. the order id: messages of one key are published one at a time, in order. */
  key: string;
  /** Message type, e.g. `order.paid` (NATS header `Oncely-Type`, AMQP property `type`). */
  type: string;
  /** Any JSON value; the body on the wire is its JSON text. */
  payload: JsonValue;
  /** Further headers, passed on as NATS / AMQP headers. Names `Nats-*`, `Oncely-*`, `Content-Type` are reserved. */
  headers?: Record<string, string>;
  /**
   * A business key to derive the id from (`order_123:paid`), or a UUID to use as the id. Adding a
   * second message with the same id is a no-op (`added: false`). Default: a fresh UUID v7.
   */
  id?: string;
}

/** A message as a publisher gets it: the row, with its body already serialised. */
export interface OutboxMessage {
  /** The message id: broker message id (`Nats-Msg-Id`, `messageId`) and inbox key. */
  readonly id: string;
  readonly topic: string;
  readonly key: string;
  readonly type: string;
  readonly payload: JsonValue;
  /** The payload's JSON text as UTF-8: the same bytes on every republish of this row. */
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  /** 1 on the first claim, 2 on the next, and so on. */
  readonly attempt: number;
  /** When the producing transaction started (the database's clock). */
  readonly createdAt: Date;
}

/** The validated parts of a new message, ready for the insert. */
export interface MessageRow {
  id: string;
  topic: string;
  key: string;
  type: string;
  payload: string;
  headers: string;
}

// A NATS subject: dot-separated tokens of printable ASCII, no wildcards (`*`, `>`); also a valid AMQP
// routing key (at most 255 bytes).
const TOPIC = /^[!-)+-=?-~]+$/;
// An HTTP token (RFC 9110 §5.6.2): valid as a NATS header name and harmless as an AMQP header name.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Text that can travel in a NATS header value: no CR, LF or NUL.
const HEADER_SAFE = /^[^\r\n\0]*$/;
const MAX_TEXT = 255;

/** Validate a new message and turn it into insert parameters; throws a TypeError naming the problem. */
export function messageRow(message: NewMessage, newId: () => string): MessageRow {
  if (typeof message !== 'object' || message === null) {
    throw new TypeError('outbox.add: the message must be an object { topic, key, type, payload }');
  }
  for (const name of Object.keys(message)) {
    if (!['topic', 'key', 'type', 'payload', 'headers', 'id'].includes(name)) {
      throw new TypeError(`outbox.add: unknown field "${name}"`);
    }
  }
  const { topic, key, type, payload, headers = {}, id } = message;
  if (typeof topic !== 'string' || topic.length > MAX_TEXT || !TOPIC.test(topic) || !validTokens(topic)) {
    throw new TypeError(
      `outbox.add: "topic" must be 1..${MAX_TEXT} printable ASCII characters without spaces or the ` +
        `wildcards * and >, in non-empty dot-separated tokens (e.g. "orders.paid"), got ${show(topic)}`,
    );
  }
  text('key', key);
  text('type', type);
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new TypeError('outbox.add: "headers" must be an object of string values');
  }
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name) || name.length > MAX_TEXT) {
      throw new TypeError(`outbox.add: header name ${show(name)} is not a token (RFC 9110)`);
    }
    if (isReservedHeader(name)) {
      throw new TypeError(`outbox.add: header ${show(name)} is reserved (Nats-*, Oncely-*, Content-Type)`);
    }
    if (typeof value !== 'string' || !HEADER_SAFE.test(value)) {
      throw new TypeError(`outbox.add: header ${show(name)} must be a string without CR, LF or NUL`);
    }
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(payload);
  } catch (error) {
    throw new TypeError(`outbox.add: "payload" is not JSON-serialisable`, { cause: error });
  }
  if (json === undefined) throw new TypeError('outbox.add: "payload" must be a JSON value');
  if (id !== undefined && (typeof id !== 'string' || id === '')) {
    throw new TypeError('outbox.add: "id" must be a non-empty string (a business key or a UUID)');
  }
  return {
    id: id === undefined ? newId() : messageId(id),
    topic,
    key,
    type,
    payload: json,
    headers: JSON.stringify(headers),
  };
}

function validTokens(topic: string): boolean {
  return topic.split('.').every((token) => token.length > 0);
}

function text(name: 'key' | 'type', value: unknown): void {
  if (typeof value !== 'string' || value === '' || value.length > MAX_TEXT || !HEADER_SAFE.test(value)) {
    throw new TypeError(
      `outbox.add: "${name}" must be 1..${MAX_TEXT} characters without CR, LF or NUL, got ${show(value)}`,
    );
  }
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : typeof value;
}

/** A claimed row (as `pg` returns it) as a publisher's message. */
export function fromRow(row: Record<string, unknown>): OutboxMessage {
  const payload = row.payload as JsonValue;
  return {
    id: row.id as string,
    topic: row.topic as string,
    key: row.key as string,
    type: row.type as string,
    payload,
    body: Buffer.from(JSON.stringify(payload), 'utf8'),
    headers: (row.headers ?? {}) as Record<string, string>,
    attempt: row.attempts as number,
    createdAt: row.created_at as Date,
  };
}
