/**
 * Writing and reading the key header. The server (`@oncely/core`'s key parser) accepts an RFC 9651
 * sf-string (`"abc"`) always, and a bare token (`abc`) unless it runs with `strictHeader: true`.
 */
import { OncelyClientError } from './errors.ts';

/** Longest key a server accepts, in characters (the same limit as `@oncely/core`). */
export const MAX_KEY_LENGTH = 255;

/** How the key is written into the header. */
export type KeyFormat = 'token' | 'sf-string';

/**
 * True when `key` is a key every Oncely server accepts: 1 to 255 characters, each printable ASCII
 * (0x20–0x7E). Kept in step with `isValidKey` of `@oncely/core`, which this package cannot import.
 * @example
 * isValidKey('order_42:pay:1'); // true
 */
export function isValidKey(key: unknown): key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) return false;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** Throws `ERR_ONCELY_CLIENT_INVALID_KEY` unless `key` is valid; the message never contains the key. */
export function assertValidKey(key: unknown, what = 'key'): asserts key is string {
  if (!isValidKey(key)) {
    throw new OncelyClientError(
      'ERR_ONCELY_CLIENT_INVALID_KEY',
      `${what} must be a string of 1 to ${MAX_KEY_LENGTH} printable ASCII characters`,
    );
  }
}

/**
 * The header value for a key. `'token'` sends it bare, except a key with a space or a comma, or one
 * that starts with a double quote: a bare value like that would be refused (or read as an sf-string),
 * so it is quoted, which every server accepts as the same key. `'sf-string'` always quotes (RFC 9651
 * §4.1.6: escape `\` and `"`).
 */
export function formatKey(key: string, format: KeyFormat): string {
  const bare = format === 'token' && !/[ ,]/.test(key) && !key.startsWith('"');
  return bare ? key : `"${key.replace(/[\\"]/g, '\\$&')}"`;
}

/**
 * The key in a header value the caller set, as the server will read it: an sf-string is unquoted,
 * a bare token is taken as is. Lenient on purpose: it only labels results; the server validates.
 */
export function readKey(value: string): string {
  const text = value.trim();
  if (!text.startsWith('"')) return text;
  let key = '';
  for (let i = 1; i < text.length; i++) {
    const c = text[i];
    if (c === '"') return key;
    if (c === '\\' && i + 1 < text.length) i++;
    key += text[i];
  }
  return key;
}
