/**
 * How two responses are told apart: the replay marker, status, body bytes, the headers a replay
 * must bring back, and the resource a response is about.
 */

import { createHash } from 'node:crypto';
import { type Exchange, header } from './exchange.ts';

/** The header Stripe and Oncely put on a replayed response. */
export const REPLAY_MARKER = 'idempotent-replayed';

/**
 * Headers a replay may change: framing and connection management (RFC 9110 §7.6.1), the time, the
 * marker itself, per-request ids and traces. `set-cookie` is judged on its own: replaying it hands
 * the first client's session to whoever retries.
 */
const MAY_DIFFER = new Set([
  'date',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'age',
  'set-cookie',
  REPLAY_MARKER,
  'x-request-id',
  'request-id',
  'x-correlation-id',
  'x-amzn-requestid',
  'x-amzn-trace-id',
  'cf-ray',
  'traceparent',
  'tracestate',
  'server-timing',
  'x-response-time',
  'x-runtime',
  'via',
  'retry-after',
]);

/** True when the response says it is a replay. */
export const marked = (exchange: Exchange): boolean =>
  (header(exchange, REPLAY_MARKER) ?? '').trim().toLowerCase() === 'true';

export const ok = (exchange: Exchange): boolean => exchange.status >= 200 && exchange.status < 300;

export const sameBytes = (a: Exchange, b: Exchange): boolean =>
  a.status === b.status && a.body.equals(b.body);

/** True when `retry` is the response to `first` given back: marked, or the same status and bytes. */
export const replayOf = (retry: Exchange, first: Exchange): boolean =>
  retry.status === first.status && (marked(retry) || retry.body.equals(first.body));

export interface HeaderDifference {
  name: string;
  first: string | undefined;
  retry: string | undefined;
}

/** Headers of `first` a replay must give back, that `retry` lacks or changed (several lines joined). */
export function headerDifferences(first: Exchange, retry: Exchange): HeaderDifference[] {
  const joined = (exchange: Exchange): Map<string, string> => {
    const map = new Map<string, string>();
    for (const [name, value] of exchange.headers) {
      if (MAY_DIFFER.has(name)) continue;
      map.set(name, map.has(name) ? `${map.get(name)}, ${value}` : value);
    }
    return map;
  };
  const a = joined(first);
  const b = joined(retry);
  const out: HeaderDifference[] = [];
  for (const [name, value] of a)
    if (b.get(name) !== value) out.push({ name, first: value, retry: b.get(name) });
  return out;
}

/** Where two bodies first differ, with a few bytes either side of it (escaped), for the report. */
export interface BodyDifference {
  offset: number;
  firstBytes: number;
  retryBytes: number;
  first: string;
  retry: string;
}

export function bodyDifference(a: Buffer, b: Buffer): BodyDifference | undefined {
  if (a.equals(b)) return undefined;
  let offset = 0;
  while (offset < a.length && offset < b.length && a[offset] === b[offset]) offset++;
  const from = Math.max(0, offset - 16);
  const window = (buffer: Buffer): string => {
    const slice = buffer.subarray(from, offset + 24);
    return `${from > 0 ? '…' : ''}${escapeBytes(slice)}${offset + 24 < buffer.length ? '…' : ''}`;
  };
  return { offset, firstBytes: a.length, retryBytes: b.length, first: window(a), retry: window(b) };
}

/** Printable ASCII as is, everything else as \xNN. */
export function escapeBytes(bytes: Buffer): string {
  let out = '';
  for (const byte of bytes) {
    if (byte === 0x5c) out += '\\\\';
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/**
 * The resource a response is about, to count executions without a count URL: the JSON field
 * `idField` (a dotted path), else `Location`, else the body bytes. Two executions that answer the
 * same bytes cannot be told apart this way; the report says which way was used.
 */
export function identity(
  exchange: Exchange,
  idField: string,
): { by: 'id' | 'location' | 'body'; value: string } {
  try {
    let value: unknown = JSON.parse(exchange.body.toString('utf8'));
    for (const part of idField.split('.')) {
      value =
        value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
    }
    if (typeof value === 'string' || typeof value === 'number') return { by: 'id', value: String(value) };
  } catch {
    // not JSON: fall through
  }
  const location = header(exchange, 'location');
  if (location) return { by: 'location', value: location };
  return { by: 'body', value: sha256(exchange.body) };
}
