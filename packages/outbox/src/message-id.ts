/**
 * Message ids. An outbox message's id is its identity on every broker (JetStream `Nats-Msg-Id`, AMQP
 * `messageId`) and in every consumer's inbox, so it is fixed when the row is written and never
 * changes on a republish. By default it is a UUID version 7 made in this process: time-ordered, so
 * the unique index on it grows at its right edge like a sequence instead of splitting random pages.
 * A caller that has a business key (`order_123:paid`) may derive the id from it instead (version 5),
 * so that the same business event gets the same id however often the producing code runs.
 */
import { createHash, randomFillSync } from 'node:crypto';

/** The namespace of ids derived from business keys (RFC 9562 §5.5): fixed forever, like the ids it makes. */
export const MESSAGE_ID_NAMESPACE = 'a44731bb-0b6b-4c87-88d5-9603d209b4cd';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a UUID in its canonical text form (any version), in either case. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** The 74 random bits of a v7 id: 12 in `rand_a`, 62 in `rand_b` (as 30 high and 32 low bits). */
interface V7State {
  ms: number;
  randA: number;
  randBHigh: number;
  randBLow: number;
}

/**
 * A generator of UUID version 7 (RFC 9562 §5.7) that is strictly increasing within the process, also
 * when many ids are made in one millisecond or the clock steps back: it then keeps the last
 * timestamp and counts the 74 random bits up by one (the "monotonic random" method of §6.2). Only
 * in the unlikely case that those bits overflow does the timestamp move one millisecond ahead.
 * @example
 * const next = uuidV7Generator();
 * next(); // '01980f0c-5d2e-7a31-9c4e-2b8f1d3e6a70'
 */
export function uuidV7Generator(clock: () => number = Date.now): () => string {
  let last: V7State | undefined;
  const random = new Uint32Array(3);
  const fresh = (ms: number): V7State => {
    randomFillSync(random);
    return {
      ms,
      randA: random[0]! & 0xfff,
      randBHigh: random[1]! & 0x3fffffff,
      randBLow: random[2]!,
    };
  };
  return () => {
    const now = Math.floor(clock());
    if (!Number.isSafeInteger(now) || now < 0 || now >= 2 ** 48) {
      throw new RangeError(`uuidV7: the clock must return epoch milliseconds, got ${now}`);
    }
    if (last === undefined || now > last.ms) last = fresh(now);
    else last = increment(last);
    return format(last);
  };
}

function increment(state: V7State): V7State {
  let { ms, randA, randBHigh, randBLow } = state;
  randBLow = (randBLow + 1) >>> 0;
  if (randBLow === 0) {
    randBHigh = (randBHigh + 1) & 0x3fffffff;
    if (randBHigh === 0) {
      randA = (randA + 1) & 0xfff;
      if (randA === 0) ms += 1; // 2^74 ids in one millisecond: borrow the next one
    }
  }
  return { ms, randA, randBHigh, randBLow };
}

function format({ ms, randA, randBHigh, randBLow }: V7State): string {
  const bytes = Buffer.alloc(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes.writeUInt16BE(0x7000 | randA, 6); // version 7
  bytes.writeUInt32BE((0x80000000 | randBHigh) >>> 0, 8); // variant 0b10
  bytes.writeUInt32BE(randBLow, 12);
  return hex(bytes);
}

function hex(bytes: Buffer): string {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The process-wide generator: ids from every outbox in this process increase together. */
export const uuidV7: () => string = uuidV7Generator();

/** The epoch milliseconds in a version 7 UUID. */
export function uuidV7Time(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

/** A name-based UUID version 5 (RFC 9562 §5.5): SHA-1 of the namespace's bytes and the name's UTF-8. */
export function uuidV5(name: string, namespace: string): string {
  if (!isUuid(namespace)) throw new TypeError(`uuidV5: namespace must be a UUID, got ${namespace}`);
  const digest = createHash('sha1')
    .update(Buffer.from(namespace.replaceAll('-', ''), 'hex'))
    .update(name, 'utf8')
    .digest();
  const bytes = digest.subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50; // version 5
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // variant 0b10
  return hex(bytes);
}

/**
 * The message id for a business key: the key itself when it already is a UUID (lower-cased),
 * otherwise the version 5 UUID of the key in {@link MESSAGE_ID_NAMESPACE}. Use a key that names one
 * event across the whole outbox (`order_123:paid`, not `order_123`). Other services can compute the
 * same id from the same key.
 * @example
 * messageId('order_123:paid'); // the same UUID on every run, in every process
 */
export function messageId(businessKey: string): string {
  if (typeof businessKey !== 'string' || businessKey === '') {
    throw new TypeError('messageId: the business key must be a non-empty string');
  }
  return isUuid(businessKey) ? businessKey.toLowerCase() : uuidV5(businessKey, MESSAGE_ID_NAMESPACE);
}
