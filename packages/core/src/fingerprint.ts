/**
 * Request fingerprints: a retry with the same key must be the same request (DESIGN §3). The
 * fingerprint covers method, route path, query (sorted) and body (canonical JSON or raw bytes).
 */
import { Buffer } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';
import { canonicalize } from './canonical-json.ts';
import { OncelyError } from './errors.ts';

/** What a request fingerprint is computed from. */
export interface FingerprintInput {
  /** HTTP method; upper-cased before hashing. */
  method: string;
  /** The request path as received, without the query. */
  path: string;
  /** Raw query string, with or without the leading `?`. */
  query?: string | null;
  /** Request body; strings are taken as UTF-8. Missing and empty bodies are the same. */
  body?: Uint8Array | string | null;
  /** `Content-Type` of the body; JSON media types get their body canonicalised. */
  contentType?: string | null;
}

// Bump when the encoding below changes, so old and new fingerprints can never be confused.
const VERSION_TAG = 'oncely-fp-v1';

const encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const EMPTY = new Uint8Array(0);

/**
 * The lowercase hex SHA-256 fingerprint of a request.
 * @throws {OncelyError} `ERR_ONCELY_BODY_AMBIGUOUS` when a JSON body names a member twice in one
 * object: parsers disagree on which one counts, so no fingerprint can say which request it is.
 * @example
 * fingerprint({ method: 'POST', path: '/orders', body: '{"qty":1}', contentType: 'application/json' });
 */
export function fingerprint(input: FingerprintInput): string {
  const body = bodyPart(input.body, input.contentType);
  const hash = createHash('sha256');
  // Every field is length-prefixed, so bytes can never shift from one field into the next
  // (path "/a" + query "b=1" versus path "/ab" + query "=1").
  hash.update(VERSION_FIELD);
  hash.update(methodField(input.method));
  stringField(hash, input.path);
  const query = input.query;
  // No query at all is the common case: its canonical form is '' without any parsing.
  stringField(
    hash,
    query === null || query === undefined || query === '' || query === '?' ? '' : canonicalQuery(query),
  );
  hash.update(body.kind === 'json' ? JSON_KIND_FIELD : RAW_KIND_FIELD);
  field(hash, body.bytes);
  return hash.digest('hex');
}

// The fields that are the same for every request, encoded once. The bytes hashed are exactly
// those of `field(hash, utf8(value))`: one encoding, however it is computed.
const fixedField = (value: string): Uint8Array => lengthPrefixed(encoder.encode(value));
const VERSION_FIELD = fixedField(VERSION_TAG);
const JSON_KIND_FIELD = fixedField('json');
const RAW_KIND_FIELD = fixedField('raw');
// Methods come from a handful of values (only covered methods are fingerprinted); at most 32 kept.
const methodFields = new Map<string, Uint8Array>();
function methodField(method: string): Uint8Array {
  let cached = methodFields.get(method);
  if (cached === undefined) {
    const upper = asciiUpperCase(method);
    cached = lengthPrefixed(wtf8(upper));
    if (methodFields.size < 32) methodFields.set(method, cached);
  }
  return cached;
}
function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + bytes.byteLength);
  writeLength(out, bytes.byteLength);
  out.set(bytes, 8);
  return out;
}

/** A string field: UTF-8 (WTF-8 for lone surrogates), without building its bytes when it needs none. */
function stringField(hash: Hash, value: string): void {
  if (LONE_SURROGATE.test(value)) {
    field(hash, wtf8(value));
    return;
  }
  writeLength(LENGTH, Buffer.byteLength(value, 'utf8'));
  hash.update(LENGTH);
  hash.update(value, 'utf8');
}

/**
 * The query string with its pairs decoded, sorted by name then value, and re-encoded.
 * @example
 * canonicalQuery('?b=2&a=1'); // 'a=1&b=2'
 */
export function canonicalQuery(query: string | null | undefined): string {
  if (query === null || query === undefined) return '';
  const raw = query.startsWith('?') ? query.slice(1) : query;
  if (isLossyToDecode(raw)) {
    // URLSearchParams turns invalid UTF-8 escapes and lone surrogates into U+FFFD, so `a=%FF` and
    // `a=%FE` would decode alike. Such a query is kept verbatim behind a "!", which form encoding
    // never emits, so it can equal neither a canonical query nor a different raw one.
    return `!${raw}`;
  }
  // The "?" prefix makes URLSearchParams strip exactly the one we add, not one that belongs to the
  // query (`??a=1` must differ from `?a=1`).
  const pairs = [...new URLSearchParams(`?${raw}`)];
  pairs.sort(([nameA, valueA], [nameB, valueB]) => compare(nameA, nameB) || compare(valueA, valueB));
  return new URLSearchParams(pairs).toString();
}

/** Compares by UTF-16 code units, independent of locale. */
function compare(a: string, b: string): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}

const LONE_SURROGATE = /\p{Cs}/u;
// A "%" that does not start an escape is kept literally by URLSearchParams, which is lossless.
const LITERAL_PERCENT = /%(?![0-9A-Fa-f]{2})/g;

function isLossyToDecode(raw: string): boolean {
  if (LONE_SURROGATE.test(raw)) return true;
  try {
    decodeURIComponent(raw.replace(LITERAL_PERCENT, '%25'));
    return false;
  } catch {
    return true;
  }
}

function bodyPart(
  body: Uint8Array | string | null | undefined,
  contentType: string | null | undefined,
): { kind: 'json' | 'raw'; bytes: Uint8Array } {
  if (body === null || body === undefined || body.length === 0) return { kind: 'raw', bytes: EMPTY };
  if (isJsonMediaType(contentType)) {
    const text = typeof body === 'string' ? body : decodeUtf8(body);
    const result = text === undefined ? undefined : canonicalize(text);
    // Canonical output is well-formed (lone surrogates are escaped), so UTF-8 is exact.
    if (result?.kind === 'canonical') return { kind: 'json', bytes: encoder.encode(result.text) };
    if (result?.kind === 'duplicate') {
      // `{"amount":99,"amount":10}` is 99 to one parser and 10 to another (RFC 8259 §4 leaves it
      // open, I-JSON forbids it). Keeping one reading, as JSON.parse's last-wins did, let a retry
      // `{"amount":10}` replay the response of a handler that charged 99. Refused before anything
      // runs; the detail names neither the member nor the body, which may be secret.
      throw new OncelyError(
        'ERR_ONCELY_BODY_AMBIGUOUS',
        'The JSON body names the same member twice in one object. Send each member once.',
      );
    }
    // Not JSON, or nested deeper than MAX_JSON_DEPTH: the raw bytes, which never collide.
  }
  return { kind: 'raw', bytes: typeof body === 'string' ? wtf8(body) : body };
}

/** `application/json` or any `+json` structured syntax suffix (RFC 6839), parameters ignored. */
function isJsonMediaType(contentType: string | null | undefined): boolean {
  if (!contentType) return false;
  const mediaType = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return mediaType === 'application/json' || (mediaType.includes('/') && mediaType.endsWith('+json'));
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    // Not UTF-8, so not JSON: hash the bytes as they are.
    return undefined;
  }
}

/** Upper-cases a-z only: `toUpperCase()` would map "ß" to "SS" and make two methods collide. */
function asciiUpperCase(s: string): string {
  return s.replace(/[a-z]+/g, (run) => run.toUpperCase());
}

/**
 * UTF-8, except that lone surrogates are encoded as their own three bytes (WTF-8) instead of
 * U+FFFD, so that the encoding stays injective for every JavaScript string.
 */
function wtf8(s: string): Uint8Array {
  if (!LONE_SURROGATE.test(s)) return encoder.encode(s);
  const bytes: number[] = [];
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) bytes.push(cp);
    else if (cp < 0x800) bytes.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) bytes.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else {
      bytes.push(
        0xf0 | (cp >> 18),
        0x80 | ((cp >> 12) & 0x3f),
        0x80 | ((cp >> 6) & 0x3f),
        0x80 | (cp & 0x3f),
      );
    }
  }
  return Uint8Array.from(bytes);
}

/** One reused length prefix: `hash.update` copies its input before returning. */
const LENGTH = new Uint8Array(8);

/** A field: its byte length as a big-endian uint64, then its bytes. */
function field(hash: Hash, bytes: Uint8Array): void {
  writeLength(LENGTH, bytes.byteLength);
  hash.update(LENGTH);
  hash.update(bytes);
}

/** `n` as a big-endian uint64 in the first 8 bytes of `out` (lengths stay far below 2^53). */
function writeLength(out: Uint8Array, n: number): void {
  const high = Math.floor(n / 0x1_0000_0000);
  const low = n >>> 0;
  out[0] = high >>> 24;
  out[1] = (high >>> 16) & 0xff;
  out[2] = (high >>> 8) & 0xff;
  out[3] = high & 0xff;
  out[4] = low >>> 24;
  out[5] = (low >>> 16) & 0xff;
  out[6] = (low >>> 8) & 0xff;
  out[7] = low & 0xff;
}
