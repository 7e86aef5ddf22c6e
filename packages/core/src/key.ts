/**
 * Parsing of the `Idempotency-Key` request header.
 *
 * The IETF draft "The Idempotency-Key HTTP Header Field" defines the value as an RFC 9651
 * Structured Field Item whose bare item is an sf-string (`Idempotency-Key: "8e03978e"`). Many
 * Stripe-style clients send the key unquoted (`Idempotency-Key: 8e03978e`), so by default a bare
 * token is accepted too; `strict: true` accepts only the sf-string form.
 */

/** Longest accepted key, in characters. */
export const MAX_KEY_LENGTH = 255;

/**
 * Outcome of {@link parseIdempotencyKey}: the key, or why there is none.
 * `detail` is a short sentence for a problem response; it never contains the key.
 */
export type KeyParseResult =
  | { ok: true; key: string }
  | { ok: false; reason: 'missing' }
  | { ok: false; reason: 'invalid'; detail: string };

export interface ParseKeyOptions {
  /**
   * Accept only the RFC 9651 sf-string form (`"abc"`), not a bare token (`abc`).
   * @default false
   */
  strict?: boolean;
}

type Invalid = { ok: false; reason: 'invalid'; detail: string };

const MISSING: KeyParseResult = Object.freeze({ ok: false, reason: 'missing' });

const invalid = (detail: string): Invalid => ({ ok: false, reason: 'invalid', detail });

// Details are fixed sentences: a key may be a secret-ish token, so it is never echoed back.
const DETAIL = {
  repeated: 'The Idempotency-Key header must be sent exactly once, not on several header lines.',
  notString: 'The Idempotency-Key header value is not a string.',
  empty: 'The Idempotency-Key header is empty.',
  emptyKey: 'The Idempotency-Key must not be an empty string.',
  tooLong: `The Idempotency-Key is longer than ${MAX_KEY_LENGTH} characters.`,
  strict: 'The Idempotency-Key must be a quoted string (an RFC 9651 sf-string such as "abc").',
  whitespace: 'The Idempotency-Key contains whitespace; quote it as an RFC 9651 sf-string.',
  comma: 'The Idempotency-Key contains a comma; several header lines may have been joined.',
  nonPrintable: 'The Idempotency-Key contains a control or non-ASCII character.',
  unterminated: 'The Idempotency-Key quoted string is not terminated.',
  badEscape: 'The Idempotency-Key quoted string contains an escape other than \\" or \\\\.',
  badParameters: 'The Idempotency-Key has malformed parameters after the quoted string.',
  trailing:
    'The Idempotency-Key has unexpected content after the quoted string; several header lines may have been joined.',
  internal: 'The Idempotency-Key header could not be parsed.',
} as const;

const HTAB = 0x09;
const SP = 0x20;
const DQUOTE = 0x22;
const PERCENT = 0x25;
const STAR = 0x2a;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const COLON = 0x3a;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const QUESTION = 0x3f;
const AT = 0x40;
const BACKSLASH = 0x5c;

/**
 * True when `key` is a usable idempotency key: 1 to 255 characters, each printable ASCII (0x20–0x7E).
 * @example
 * isValidKey('order-42'); // true
 */
export function isValidKey(key: string): boolean {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) return false;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/**
 * Parses an `Idempotency-Key` header value (a string, or Node's array of header lines); never throws.
 * @example
 * parseIdempotencyKey('"order-42"'); // { ok: true, key: 'order-42' }
 */
export function parseIdempotencyKey(
  value: string | readonly string[] | null | undefined,
  options?: ParseKeyOptions,
): KeyParseResult {
  try {
    return parse(value, options?.strict === true);
  } catch {
    // The parser itself is total; this only guards against hostile inputs such as a Proxy whose
    // getters throw, because a header parser must answer 400, never crash the request.
    return invalid(DETAIL.internal);
  }
}

function parse(value: unknown, strict: boolean): KeyParseResult {
  if (value === undefined || value === null) return MISSING;
  let field: unknown = value;
  if (typeof value !== 'string' && Array.isArray(value)) {
    if (value.length === 0) return MISSING;
    // Two header lines would be joined with ", " by any proxy on the way, which is ambiguous.
    if (value.length > 1) return invalid(DETAIL.repeated);
    field = value[0];
  }
  if (typeof field !== 'string') return invalid(DETAIL.notString);

  const text = trimOws(field);
  if (text.length === 0) return invalid(DETAIL.empty);
  if (text.charCodeAt(0) === DQUOTE) return parseStringItem(text);
  if (strict) return invalid(DETAIL.strict);
  return parseBareKey(text);
}

/** Strips OWS (SP and HTAB, RFC 9110 §5.6.3) from both ends; nothing else counts as whitespace. */
function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isOws(s.charCodeAt(start))) start++;
  while (end > start && isOws(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}

/** The lenient form: a run of visible ASCII without commas (a comma means joined header lines). */
function parseBareKey(text: string): KeyParseResult {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isOws(c)) return invalid(DETAIL.whitespace);
    if (c < 0x21 || c > 0x7e) return invalid(DETAIL.nonPrintable);
    if (c === COMMA) return invalid(DETAIL.comma);
  }
  if (text.length > MAX_KEY_LENGTH) return invalid(DETAIL.tooLong);
  return { ok: true, key: text };
}

/*
 * RFC 9651 §4.2 "Parsing Structured Fields" for a field of type Item, restricted to an sf-string
 * bare item: §4.2.3 (Item = bare item, then parameters), §4.2.5 (String). Leading and trailing
 * whitespace has already been removed, so whatever follows the parameters is an error (for
 * instance `"a", "b"` from two joined header lines).
 */
function parseStringItem(text: string): KeyParseResult {
  // §4.2.5: chars are %x20-21 / %x23-5B / %x5D-7E; "\" may only escape DQUOTE or "\".
  let key = '';
  let tooLong = false;
  let i = 1;
  for (;;) {
    if (i >= text.length) return invalid(DETAIL.unterminated);
    let c = text.charCodeAt(i);
    if (c === DQUOTE) {
      i++;
      break;
    }
    if (c === BACKSLASH) {
      i++;
      if (i >= text.length) return invalid(DETAIL.unterminated);
      c = text.charCodeAt(i);
      if (c !== DQUOTE && c !== BACKSLASH) return invalid(DETAIL.badEscape);
    } else if (c < 0x20 || c > 0x7e) {
      return invalid(DETAIL.nonPrintable);
    }
    // Keep scanning past the length limit so a syntax error is still reported as such, but stop
    // building the string: a hostile header must not cost more than one pass.
    if (key.length < MAX_KEY_LENGTH) key += text[i];
    else tooLong = true;
    i++;
  }

  // §4.2.3.2: parameters are parsed (they must be well-formed) and then ignored.
  i = skipParameters(text, i);
  if (i < 0) return invalid(DETAIL.badParameters);
  if (i < text.length) return invalid(DETAIL.trailing);

  if (key.length === 0) return invalid(DETAIL.emptyKey);
  if (tooLong) return invalid(DETAIL.tooLong);
  return isValidKey(key) ? { ok: true, key } : invalid(DETAIL.nonPrintable);
}

// Each skip* helper below takes the input and a start index and returns the index just past what
// it consumed, or -1 when the input is not well-formed there.

/** RFC 9651 §4.2.3.2 Parsing Parameters: `*( ";" *SP key [ "=" bare-item ] )`. */
function skipParameters(s: string, start: number): number {
  let i = start;
  while (i < s.length && s.charCodeAt(i) === SEMICOLON) {
    i++;
    while (i < s.length && s.charCodeAt(i) === SP) i++;
    i = skipKey(s, i);
    if (i < 0) return -1;
    if (i < s.length && s.charCodeAt(i) === EQUALS) {
      i = skipBareItem(s, i + 1);
      if (i < 0) return -1;
    }
  }
  return i;
}

/** §4.2.3.3 Parsing a Key: `( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`. */
function skipKey(s: string, start: number): number {
  if (start >= s.length) return -1;
  const first = s.charCodeAt(start);
  if (!isLcAlpha(first) && first !== STAR) return -1;
  let i = start + 1;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (!(isLcAlpha(c) || isDigit(c) || c === 0x5f || c === MINUS || c === DOT || c === STAR)) break;
    i++;
  }
  return i;
}

/** §4.2.3.1 Parsing a Bare Item: dispatch on the first character. */
function skipBareItem(s: string, i: number): number {
  if (i >= s.length) return -1;
  const c = s.charCodeAt(i);
  if (c === MINUS || isDigit(c)) return skipNumber(s, i, false);
  if (c === DQUOTE) return skipString(s, i);
  if (isAlpha(c) || c === STAR) return skipToken(s, i);
  if (c === COLON) return skipByteSequence(s, i);
  if (c === QUESTION) return skipBoolean(s, i);
  if (c === AT) return skipNumber(s, i + 1, true);
  if (c === PERCENT) return skipDisplayString(s, i);
  return -1;
}

/**
 * §4.2.4 Parsing an Integer or Decimal: at most 15 integer digits; a decimal has at most 12 digits
 * before and 1 to 3 after the dot. `integerOnly` serves §4.2.9 (Date), whose value is an Integer.
 */
function skipNumber(s: string, start: number, integerOnly: boolean): number {
  let i = start;
  if (i < s.length && s.charCodeAt(i) === MINUS) i++;
  if (i >= s.length || !isDigit(s.charCodeAt(i))) return -1;
  let digits = 0;
  let dotAt = -1;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (isDigit(c)) digits++;
    else if (c === DOT && dotAt < 0) {
      if (digits > 12) return -1;
      dotAt = digits;
    } else break;
    i++;
    if (dotAt < 0 ? digits > 15 : digits + 1 > 16) return -1;
  }
  if (dotAt >= 0) {
    const fraction = digits - dotAt;
    if (integerOnly || fraction === 0 || fraction > 3) return -1;
  }
  return i;
}

/** §4.2.5 Parsing a String, without building the value (parameter values are ignored). */
function skipString(s: string, start: number): number {
  let i = start + 1;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === DQUOTE) return i + 1;
    if (c === BACKSLASH) {
      i++;
      if (i >= s.length) return -1;
      const next = s.charCodeAt(i);
      if (next !== DQUOTE && next !== BACKSLASH) return -1;
    } else if (c < 0x20 || c > 0x7e) {
      return -1;
    }
    i++;
  }
  return -1;
}

/** §4.2.6 Parsing a Token: `( ALPHA / "*" ) *( tchar / ":" / "/" )`. */
function skipToken(s: string, start: number): number {
  let i = start + 1;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (!(isTchar(c) || c === COLON || c === 0x2f)) break;
    i++;
  }
  return i;
}

/**
 * §4.2.7 Parsing a Byte Sequence: `":" *(base64) ":"`. The content must be decodable base64;
 * padding is checked leniently, which the RFC allows.
 */
function skipByteSequence(s: string, start: number): number {
  const end = s.indexOf(':', start + 1);
  if (end < 0) return -1;
  let data = 0;
  let padding = 0;
  for (let i = start + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === EQUALS) padding++;
    else if (padding > 0)
      return -1; // "=" only at the end
    else if (isAlpha(c) || isDigit(c) || c === 0x2b || c === 0x2f) data++;
    else return -1;
  }
  if (padding > 2 || data % 4 === 1) return -1;
  return end + 1;
}

/** §4.2.8 Parsing a Boolean: `"?" ( "0" / "1" )`. */
function skipBoolean(s: string, start: number): number {
  const c = s.charCodeAt(start + 1);
  return c === 0x30 || c === 0x31 ? start + 2 : -1;
}

/** §4.2.10 Parsing a Display String: `"%" DQUOTE *( char / "%" lc-hexdig lc-hexdig ) DQUOTE`, UTF-8. */
function skipDisplayString(s: string, start: number): number {
  if (s.charCodeAt(start + 1) !== DQUOTE) return -1;
  const bytes: number[] = [];
  let i = start + 2;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return -1;
    if (c === DQUOTE) return isUtf8(bytes) ? i + 1 : -1;
    if (c === PERCENT) {
      const hi = lcHexValue(s.charCodeAt(i + 1));
      const lo = lcHexValue(s.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return -1;
      bytes.push(hi * 16 + lo);
      i += 3;
    } else {
      bytes.push(c);
      i++;
    }
  }
  return -1;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function isUtf8(bytes: readonly number[]): boolean {
  try {
    utf8Decoder.decode(Uint8Array.from(bytes));
    return true;
  } catch {
    return false;
  }
}

function lcHexValue(c: number): number {
  if (isDigit(c)) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isLcAlpha(c: number): boolean {
  return c >= 0x61 && c <= 0x7a;
}

function isAlpha(c: number): boolean {
  return isLcAlpha(c) || (c >= 0x41 && c <= 0x5a);
}

/** RFC 9110 §5.6.2 tchar. */
function isTchar(c: number): boolean {
  return isAlpha(c) || isDigit(c) || (c < 0x80 && "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)));
}
