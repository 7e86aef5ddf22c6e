/**
 * Keys from business intent. A key names one operation the caller means to happen once ("pay order
 * 42, first try"), so deriving it from that intent makes every retry, and every restart of the
 * caller, send the same key without storing it anywhere.
 */
import { OncelyClientError } from './errors.ts';
import { MAX_KEY_LENGTH } from './key-header.ts';
import { hasLoneSurrogate, sha256Base64url } from './sha256.ts';

/** One part of a derived key. Numbers and bigints are written in decimal, so `42` and `'42'` are one part. */
export type KeyPart = string | number | bigint;

const encoder = new TextEncoder();
const HEX = '0123456789ABCDEF';

/** Prefix of a hashed key; `~` never occurs in a readable key, so the two forms cannot meet. */
const HASHED_PREFIX = 'sha256~';

/**
 * A key derived from the parts of a business intent: stable (the same parts always give the same
 * key) and collision-free (different parts never give the same key, whatever the part boundaries).
 *
 * Readable when it fits: each part is percent-encoded (everything but `A-Z a-z 0-9 _ . -` becomes
 * `%XX` of its UTF-8 bytes) and the parts are joined with `:`, so `deriveKey('order', 42, 'pay', 1)` is
 * `order:42:pay:1` and `('ab', 'c')` (`ab:c`) never meets `('a', 'bc')` (`a:bc`). A readable key longer
 * than 255 characters is replaced by `sha256~` and the base64url SHA-256 of it (50 characters). Either
 * way the result is a valid key for any Oncely server: 1..255 printable ASCII, no space, no comma.
 *
 * Async because the long form hashes with Web Crypto, which only has an async digest.
 * @example
 * const key = await deriveKey('order', order.id, 'pay', paymentAttempt); // 'order:o_123:pay:1'
 */
export async function deriveKey(...parts: KeyPart[]): Promise<string> {
  if (parts.length === 0) {
    throw new OncelyClientError('ERR_ONCELY_CLIENT_INVALID_KEY', 'deriveKey needs at least one part');
  }
  const readable = parts.map(encodePart).join(':');
  return readable.length <= MAX_KEY_LENGTH ? readable : HASHED_PREFIX + (await sha256Base64url([readable]));
}

function encodePart(part: KeyPart, index: number): string {
  let text: string;
  if (typeof part === 'string') text = part;
  else if (typeof part === 'bigint') text = part.toString();
  else if (typeof part === 'number' && Number.isFinite(part)) text = String(part);
  else text = '';
  // An empty part is almost always a missing id (`order.id` undefined): refuse it rather than
  // derive a key that every such call would share.
  if (text === '' || hasLoneSurrogate(text)) {
    throw new OncelyClientError(
      'ERR_ONCELY_CLIENT_INVALID_KEY',
      `deriveKey part ${index} must be a non-empty string, a finite number or a bigint`,
    );
  }
  let out = '';
  for (const byte of encoder.encode(text)) {
    const unreserved =
      (byte >= 0x30 && byte <= 0x39) || // 0-9
      (byte >= 0x41 && byte <= 0x5a) || // A-Z
      (byte >= 0x61 && byte <= 0x7a) || // a-z
      byte === 0x5f || // _
      byte === 0x2e || // .
      byte === 0x2d; // -
    out += unreserved ? String.fromCharCode(byte) : `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}
