/**
 * A canonical form of JSON text for request fingerprints: two bodies that mean the same JSON value
 * get the same canonical text, whatever their key order, whitespace or string escapes.
 *
 * One hand-written pass over the text (the RFC 8259 grammar) with an explicit stack, no recursion.
 * JSON.parse is not used: it rounds numbers through doubles, keeps the last of two duplicate members
 * without a word, and with a reviver it allocates and recurses per value (~430 ms for a 1 MiB array
 * of small numbers). Here a value whose canonical form equals its source text, the usual case for
 * compact JSON, costs nothing but the scan. Only what differs (whitespace, escaped strings, objects
 * whose keys are out of order) is described as a list of segments in typed arrays, source ranges
 * mostly, which are copied into the result once, at the end. So the cost is linear in the length
 * of the text, whatever the nesting, and a call allocates little beyond the result and the buffer
 * it is copied in.
 */
import { Buffer } from 'node:buffer';

/**
 * Containers nested deeper than this are not canonicalised: the body hashes as raw bytes, which
 * never collide (at worst a reordered retry of such a body is refused as a mismatch). 1000 levels
 * stay canonical, as they always have; the JSON.parse reviver this replaced gave up at a depth set
 * by the stack (2000 to 3000), this bound does not depend on it.
 */
export const MAX_JSON_DEPTH = 1000;

/** What `canonicalize` makes of a text. Expected outcomes, so a result union rather than exceptions. */
export type CanonicalResult =
  /** Sorted keys, no whitespace, numbers as written, strings as JSON.stringify prints them. */
  | { readonly kind: 'canonical'; readonly text: string }
  /** Not a JSON text (RFC 8259). */
  | { readonly kind: 'invalid' }
  /** Valid JSON, but an object names a member twice (after unescaping): its meaning depends on the parser. */
  | { readonly kind: 'duplicate' }
  /** Nested deeper than `MAX_JSON_DEPTH`; the scan stopped there. */
  | { readonly kind: 'too-deep' };

const INVALID: CanonicalResult = Object.freeze({ kind: 'invalid' });
const DUPLICATE: CanonicalResult = Object.freeze({ kind: 'duplicate' });
const TOO_DEEP: CanonicalResult = Object.freeze({ kind: 'too-deep' });

/**
 * The canonical form of a JSON text (sorted keys, no whitespace, numbers as written), or `undefined`
 * when the text is not valid JSON, names a member twice in one object, or nests deeper than
 * `MAX_JSON_DEPTH`.
 * @example
 * canonicalJson('{ "b": 1, "a": "\\u0041" }'); // '{"a":"A","b":1}'
 */
export function canonicalJson(text: string): string | undefined {
  if (typeof text !== 'string') return undefined;
  const result = canonicalize(text);
  return result.kind === 'canonical' ? result.text : undefined;
}

// Character codes.
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const PLUS = 0x2b;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const SLASH = 0x2f;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const UPPER_E = 0x45;
const OPEN_BRACKET = 0x5b;
const BACKSLASH = 0x5c;
const CLOSE_BRACKET = 0x5d;
const LOWER_E = 0x65;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

const ARRAY = 1;
const OBJECT = 2;

// All state lives at module level, so that a call allocates nothing per value; `canonicalize` is
// synchronous and calls nothing outside this module, so it is never re-entered.

/** Typed arrays grown past this many entries for a large body are dropped after the call. */
const KEPT_CAPACITY = 1 << 14;

// Output segments: a singly linked list per piece of output still being built, NONE-terminated.
// A segment is the index of three numbers in `segs`: start, end, next. A start >= 0 is a range of
// the source text; a start < 0 is the range [-1 - start, end) of `built`.
const NONE = -1;
const INITIAL_SEGMENTS = 1024;
let segs = new Int32Array(3 * INITIAL_SEGMENTS);
let segments = 0; // where the next segment goes in `segs`

// Code units that are not in the source: strings rewritten as JSON.stringify prints them, the
// decoded form of keys that had escapes (to compare them by), and at 0 the comma put between the
// members of a sorted object.
const INITIAL_BUILT = 4096;
let built = new Uint16Array(INITIAL_BUILT);
let builtLength = 1;
built[0] = COMMA;
const COMMA_START = -1; // the range [0, 1) of `built`

/** The decoded code units of the string scanString just read, when `stringChanged`. */
let scratch = new Uint16Array(256);
let scratchLength = 0;
/** The string scanString just read has to be rewritten: it has an escape, or a lone surrogate. */
let stringChanged = false;

// The explicit stack, one slot per open container (slot 0 is the top level). A container's output
// is "clean", equal to its source range with nothing built, until something in it differs; from
// then on `head`/`tail` hold its list (for an object: the current member's list) and `run` is where
// the source range not yet in the list begins.
const kind = new Uint8Array(MAX_JSON_DEPTH + 1);
const open = new Int32Array(MAX_JSON_DEPTH + 1); // index of the "[" or "{"
const run = new Int32Array(MAX_JSON_DEPTH + 1);
const head = new Int32Array(MAX_JSON_DEPTH + 1);
const tail = new Int32Array(MAX_JSON_DEPTH + 1);
/** Array: its output differs from its source. Object: the current member's output does. */
const dirty = new Uint8Array(MAX_JSON_DEPTH + 1);
/** Object: its output differs from its source (whitespace, a changed member, keys out of order). */
const objectDirty = new Uint8Array(MAX_JSON_DEPTH + 1);
const unsorted = new Uint8Array(MAX_JSON_DEPTH + 1);
/** Object: the index of its first member on the member stack. */
const memberBase = new Int32Array(MAX_JSON_DEPTH + 1);
/** Object: the current member's key: its quotes, and its decoded range in `built` (or -1). */
const key = new Int32Array(4 * (MAX_JSON_DEPTH + 1));

// The members of every open object, in source order, `STRIDE` numbers each in `spans`: the key's
// opening and closing quote, the end of the value, and the key decoded in `built` ([from, to), or
// -1 when the key needed no decoding and is compared in place); and the member's list
// (`memberHead`/`memberTail`), NONE when its output is its source range.
const STRIDE = 5;
const INITIAL_MEMBERS = 256;
let spans = new Int32Array(INITIAL_MEMBERS * STRIDE);
let memberHead = new Int32Array(INITIAL_MEMBERS);
let memberTail = new Int32Array(INITIAL_MEMBERS);
/** Scratch for sorting one object's members. */
let order = new Int32Array(INITIAL_MEMBERS);
// Set by buildObject.
let builtTail = NONE;

/**
 * Canonicalises a JSON text in one pass, and says why when it cannot.
 * @example
 * canonicalize('{"a":1,"\\u0061":2}'); // { kind: 'duplicate' }
 */
export function canonicalize(text: string): CanonicalResult {
  try {
    return scan(text);
  } finally {
    // Give back memory grown for a large body.
    segments = 0;
    builtLength = 1;
    if (segs.length > 3 * KEPT_CAPACITY) segs = new Int32Array(3 * INITIAL_SEGMENTS);
    if (built.length > KEPT_CAPACITY) {
      built = new Uint16Array(INITIAL_BUILT);
      built[0] = COMMA;
    }
    if (scratch.length > KEPT_CAPACITY) scratch = new Uint16Array(256);
    if (memberHead.length > KEPT_CAPACITY) {
      spans = new Int32Array(INITIAL_MEMBERS * STRIDE);
      memberHead = new Int32Array(INITIAL_MEMBERS);
      memberTail = new Int32Array(INITIAL_MEMBERS);
    }
    if (order.length > KEPT_CAPACITY) order = new Int32Array(INITIAL_MEMBERS);
  }
}

function scan(text: string): CanonicalResult {
  const n = text.length;
  let depth = 0;
  let members = 0; // on the member stack
  let duplicate = false;
  let expectKey = false;
  let i = skipWhitespace(text, 0);

  for (;;) {
    if (expectKey) {
      // A member of the object at `depth`: its key and colon here, its value below.
      expectKey = false;
      if (i >= n || text.charCodeAt(i) !== QUOTE) return INVALID;
      const end = scanString(text, i);
      if (end < 0) return INVALID;
      const k = 4 * depth;
      key[k] = i;
      key[k + 1] = end - 1;
      if (stringChanged) {
        // Keep the decoded key for comparing, then write it out as JSON.stringify would.
        reserveBuilt(scratchLength);
        key[k + 2] = builtLength;
        built.set(scratch.subarray(0, scratchLength), builtLength);
        builtLength += scratchLength;
        key[k + 3] = builtLength;
        const segment = writeString();
        head[depth] = segment;
        tail[depth] = segment;
        run[depth] = end;
        dirty[depth] = 1;
      } else {
        key[k + 2] = -1;
        head[depth] = NONE;
        run[depth] = i;
        dirty[depth] = 0;
      }
      i = end;
      let next = skipWhitespace(text, i);
      if (next > i) skip(depth, i, next);
      if (next >= n || text.charCodeAt(next) !== COLON) return INVALID;
      i = next + 1;
      next = skipWhitespace(text, i);
      if (next > i) skip(depth, i, next);
      i = next;
    }

    // A value at i. Scalars, and containers that close at once, go on to the completion loop
    // with their source range [start, i) and their list (`valueHead` ... `valueTail`, or NONE).
    if (i >= n) return INVALID;
    const start = i;
    let valueHead = NONE;
    let valueTail = NONE;
    const c = text.charCodeAt(i);
    if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (depth === MAX_JSON_DEPTH) return TOO_DEEP;
      depth++;
      open[depth] = i;
      run[depth] = i;
      head[depth] = NONE;
      dirty[depth] = 0;
      i++;
      const next = skipWhitespace(text, i);
      if (c === OPEN_BRACKET) {
        kind[depth] = ARRAY;
        if (next > i) skip(depth, i, next);
        i = next;
        if (i >= n || text.charCodeAt(i) !== CLOSE_BRACKET) continue;
      } else {
        kind[depth] = OBJECT;
        objectDirty[depth] = next > i ? 1 : 0;
        unsorted[depth] = 0;
        memberBase[depth] = members;
        i = next;
        if (i >= n || text.charCodeAt(i) !== CLOSE_BRACE) {
          expectKey = true;
          continue;
        }
      }
      // "[]" or "{}", with whitespace inside or not.
      depth--;
      i++;
      if (i - start > 2) {
        valueHead = newSegment(start, start + 1);
        valueTail = newSegment(i - 1, i);
        segs[valueHead + 2] = valueTail;
      }
    } else if (c === QUOTE) {
      i = scanString(text, i);
      if (i < 0) return INVALID;
      if (stringChanged) {
        valueHead = writeString();
        valueTail = valueHead;
      }
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      // Numbers keep their source text: 12345678901234567890 and 12345678901234567891 are the
      // same double, and must not be the same request.
      i = scanNumber(text, i);
      if (i < 0) return INVALID;
    } else if (text.startsWith('true', i)) {
      i += 4;
    } else if (text.startsWith('false', i)) {
      i += 5;
    } else if (text.startsWith('null', i)) {
      i += 4;
    } else {
      return INVALID;
    }

    // The completion loop: hand the value [valueStart, i) to its container, then read what
    // follows; a closing bracket completes that container, which is handed on in turn.
    let valueStart = start;
    for (;;) {
      if (depth === 0) {
        if (skipWhitespace(text, i) !== n) return INVALID;
        if (duplicate) return DUPLICATE;
        if (valueHead !== NONE) return { kind: 'canonical', text: assemble(text, valueHead) };
        return { kind: 'canonical', text: valueStart === 0 && i === n ? text : text.slice(valueStart, i) };
      }
      if (valueHead !== NONE) {
        if (valueStart > run[depth]!) append(depth, newSegment(run[depth]!, valueStart));
        appendList(depth, valueHead, valueTail);
        run[depth] = i;
        dirty[depth] = 1;
      }

      if (kind[depth] === OBJECT) {
        // The member ends with its value: push it.
        if (members === memberHead.length) growMembers();
        const at = members * STRIDE;
        const k = 4 * depth;
        spans[at] = key[k]!;
        spans[at + 1] = key[k + 1]!;
        spans[at + 2] = i;
        spans[at + 3] = key[k + 2]!;
        spans[at + 4] = key[k + 3]!;
        if (dirty[depth]) {
          if (i > run[depth]!) append(depth, newSegment(run[depth]!, i));
          memberHead[members] = head[depth]!;
          memberTail[members] = tail[depth]!;
          objectDirty[depth] = 1;
        } else {
          memberHead[members] = NONE;
        }
        members++;
        // Keys in strictly increasing order need no sort and hold no duplicate.
        if (members - 1 > memberBase[depth]! && !unsorted[depth]) {
          const comparison = compareKeys(text, members - 2, members - 1);
          if (comparison >= 0) {
            if (comparison === 0) duplicate = true;
            unsorted[depth] = 1;
            objectDirty[depth] = 1;
          }
        }
        let next = skipWhitespace(text, i);
        if (next > i) objectDirty[depth] = 1;
        i = next;
        const d = i < n ? text.charCodeAt(i) : -1;
        if (d === COMMA) {
          next = skipWhitespace(text, i + 1);
          if (next > i + 1) objectDirty[depth] = 1;
          i = next;
          expectKey = true;
          break;
        }
        if (d !== CLOSE_BRACE) return INVALID;
        valueStart = open[depth]!;
        valueHead = NONE;
        // After a duplicate no output is used: the scan goes on only to tell invalid JSON apart.
        if (objectDirty[depth] && !duplicate) {
          valueHead = buildObject(text, valueStart, i, memberBase[depth]!, members, unsorted[depth] === 1);
          if (valueHead === NONE) duplicate = true;
          valueTail = builtTail;
        }
        i++;
        members = memberBase[depth]!;
        depth--;
        continue;
      }

      // In an array.
      let next = skipWhitespace(text, i);
      if (next > i) skip(depth, i, next);
      i = next;
      const d = i < n ? text.charCodeAt(i) : -1;
      if (d === COMMA) {
        i++;
        next = skipWhitespace(text, i);
        if (next > i) skip(depth, i, next);
        i = next;
        break;
      }
      if (d !== CLOSE_BRACKET) return INVALID;
      i++;
      valueStart = open[depth]!;
      valueHead = NONE;
      if (dirty[depth]) {
        if (i > run[depth]!) append(depth, newSegment(run[depth]!, i));
        valueHead = head[depth]!;
        valueTail = tail[depth]!;
      }
      depth--;
    }
  }
}

/** Leaves the whitespace [from, to) out of the output of the container (or member) at `depth`. */
function skip(depth: number, from: number, to: number): void {
  if (from > run[depth]!) append(depth, newSegment(run[depth]!, from));
  run[depth] = to;
  dirty[depth] = 1;
}

function append(depth: number, segment: number): void {
  if (head[depth] === NONE) head[depth] = segment;
  else segs[tail[depth]! + 2] = segment;
  tail[depth] = segment;
}

function appendList(depth: number, first: number, last: number): void {
  if (head[depth] === NONE) head[depth] = first;
  else segs[tail[depth]! + 2] = first;
  tail[depth] = last;
}

/** A new segment, [start, end) of the source, or of `built` when start < 0 (see `segs`). */
function newSegment(start: number, end: number): number {
  if (segments === segs.length) {
    const grown = new Int32Array(2 * segs.length);
    grown.set(segs);
    segs = grown;
  }
  const segment = segments;
  segments += 3;
  segs[segment] = start;
  segs[segment + 1] = end;
  segs[segment + 2] = NONE;
  return segment;
}

function growMembers(): void {
  const grow = (from: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
    const to = new Int32Array(from.length * 2);
    to.set(from);
    return to;
  };
  spans = grow(spans);
  memberHead = grow(memberHead);
  memberTail = grow(memberTail);
}

/**
 * Compares the keys of members `a` and `b` by UTF-16 code units, the order RFC 8785 (JCS) uses:
 * negative, zero (the same name) or positive.
 */
function compareKeys(text: string, a: number, b: number): number {
  const sa = a * STRIDE;
  const sb = b * STRIDE;
  if (spans[sa + 3] === -1 && spans[sb + 3] === -1) {
    // Both as written in the source, the usual case.
    let p = spans[sa]! + 1;
    let q = spans[sb]! + 1;
    const lengthA = spans[sa + 1]! - p;
    const lengthB = spans[sb + 1]! - q;
    const end = p + Math.min(lengthA, lengthB);
    for (; p < end; p++, q++) {
      const diff = text.charCodeAt(p) - text.charCodeAt(q);
      if (diff !== 0) return diff;
    }
    return lengthA - lengthB;
  }
  const inSourceA = spans[sa + 3] === -1;
  const inSourceB = spans[sb + 3] === -1;
  let p = inSourceA ? spans[sa]! + 1 : spans[sa + 3]!;
  let q = inSourceB ? spans[sb]! + 1 : spans[sb + 3]!;
  const lengthA = (inSourceA ? spans[sa + 1]! : spans[sa + 4]!) - p;
  const lengthB = (inSourceB ? spans[sb + 1]! : spans[sb + 4]!) - q;
  const end = p + Math.min(lengthA, lengthB);
  for (; p < end; p++, q++) {
    const diff = (inSourceA ? text.charCodeAt(p) : built[p]!) - (inSourceB ? text.charCodeAt(q) : built[q]!);
    if (diff !== 0) return diff;
  }
  return lengthA - lengthB;
}

/**
 * The list of the object between `open` and `close` whose members are [base, end) on the member
 * stack: its head, with its tail in `builtTail`; or NONE when two members have the same name.
 */
function buildObject(
  text: string,
  open: number,
  close: number,
  base: number,
  end: number,
  unsorted: boolean,
): number {
  const count = end - base;
  if (order.length < count) order = new Int32Array(Math.max(count, order.length * 2));
  for (let k = 0; k < count; k++) order[k] = base + k;
  if (unsorted) {
    sortMembers(text, count);
    for (let k = 1; k < count; k++) if (compareKeys(text, order[k - 1]!, order[k]!) === 0) return NONE;
  }
  const first = newSegment(open, open + 1);
  let last = first;
  for (let k = 0; k < count; k++) {
    if (k > 0) {
      const comma = newSegment(COMMA_START, 1);
      segs[last + 2] = comma;
      last = comma;
    }
    const m = order[k]!;
    if (memberHead[m] === NONE) {
      const segment = newSegment(spans[m * STRIDE]!, spans[m * STRIDE + 2]!);
      segs[last + 2] = segment;
      last = segment;
    } else {
      segs[last + 2] = memberHead[m]!;
      last = memberTail[m]!;
    }
  }
  const brace = newSegment(close, close + 1);
  segs[last + 2] = brace;
  builtTail = brace;
  return first;
}

/** Sorts `order[0, count)` by key: insertion sort for the small objects most bodies hold. */
function sortMembers(text: string, count: number): void {
  if (count > 16) {
    const sorted = Array.from(order.subarray(0, count)).sort((a, b) => compareKeys(text, a, b));
    order.set(sorted);
    return;
  }
  for (let k = 1; k < count; k++) {
    const m = order[k]!;
    let j = k - 1;
    while (j >= 0 && compareKeys(text, order[j]!, m) > 0) {
      order[j + 1] = order[j]!;
      j--;
    }
    order[j + 1] = m;
  }
}

/**
 * The text of the list starting at `first`. Source ranges are copied as UTF-16 code units, behind
 * a copy of the whole source in the same buffer, adjacent ones at once; built ranges byte by byte.
 * Node's "utf16le" is little-endian on every platform and keeps every code unit as it is.
 */
function assemble(text: string, first: number): string {
  let length = 0;
  for (let s = first; s !== NONE; s = segs[s + 2]!) {
    const start = segs[s]!;
    length += segs[s + 1]! - (start >= 0 ? start : -1 - start);
  }
  const base = text.length;
  const bytes = Buffer.allocUnsafeSlow(2 * (base + length));
  bytes.write(text, 0, 'utf16le');
  // Whole code units move between two views of the same bytes: no byte order is involved.
  const units = new Uint16Array(bytes.buffer, bytes.byteOffset, base + length);
  let at = base;
  for (let s = first; s !== NONE; s = segs[s + 2]!) {
    let start = segs[s]!;
    let end = segs[s + 1]!;
    if (start >= 0) {
      // Ranges that follow each other in the source are copied as one.
      for (let t = segs[s + 2]!; t !== NONE && segs[t] === end; t = segs[t + 2]!) {
        end = segs[t + 1]!;
        s = t;
      }
      if (end - start <= 8) {
        while (start < end) units[at++] = units[start++]!;
      } else {
        units.copyWithin(at, start, end);
        at += end - start;
      }
    } else {
      // `built` holds numbers in the platform's byte order: write them little-endian.
      for (let k = -1 - start; k < end; k++, at++) {
        const unit = built[k]!;
        bytes[2 * at] = unit & 0xff;
        bytes[2 * at + 1] = unit >>> 8;
      }
    }
  }
  return bytes.toString('utf16le', 2 * base, 2 * at);
}

function skipWhitespace(text: string, i: number): number {
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c > SPACE || (c !== SPACE && c !== LF && c !== CR && c !== TAB)) return i;
    i++;
  }
  return i;
}

/**
 * Scans the string whose opening quote is at `start`; returns the index after its closing quote,
 * or -1 when it is not a valid JSON string. Sets `stringChanged`, and when set leaves the decoded
 * string in `scratch`.
 */
function scanString(text: string, start: number): number {
  const n = text.length;
  let i = start + 1;
  // As written, until the first escape or lone surrogate.
  for (;;) {
    if (i >= n) return -1;
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      stringChanged = false;
      return i + 1;
    }
    if (c === BACKSLASH || c < SPACE) break;
    if (c >= 0xd800 && c <= 0xdfff) {
      // A surrogate pair is printed as it is; a lone surrogate is escaped by JSON.stringify.
      if (c <= 0xdbff && i + 1 < n) {
        const d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          i += 2;
          continue;
        }
      }
      break;
    }
    i++;
  }
  // From here on every code unit is decoded into `scratch`.
  if (scratch.length < n - start) scratch = new Uint16Array(Math.max(n - start, 2 * scratch.length));
  let length = 0;
  for (let k = start + 1; k < i; k++) scratch[length++] = text.charCodeAt(k);
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      stringChanged = true;
      scratchLength = length;
      return i + 1;
    }
    if (c === BACKSLASH) {
      const unit = escapedUnit(text, i + 1);
      if (unit < 0) return -1;
      scratch[length++] = unit; // a Uint16Array keeps the low 16 bits
      i += unit >= 0x10000 ? 6 : 2;
      continue;
    }
    if (c < SPACE) return -1;
    scratch[length++] = c;
    i++;
  }
  return -1;
}

/**
 * Writes the string in `scratch` to `built` exactly as JSON.stringify prints it (ECMA-262
 * QuoteJSONString): `"` and `\` escaped, the short escapes for \b \t \n \f \r, `\u00xx` for other
 * control characters and `\udxxx` for lone surrogates, lowercase; everything else as it is.
 * Returns its segment.
 */
function writeString(): number {
  reserveBuilt(6 * scratchLength + 2);
  const out = built;
  let b = builtLength;
  const from = b;
  out[b++] = QUOTE;
  for (let k = 0; k < scratchLength; k++) {
    const u = scratch[k]!;
    if (u >= SPACE && u !== QUOTE && u !== BACKSLASH && (u < 0xd800 || u > 0xdfff)) {
      out[b++] = u;
    } else if (u >= 0xd800 && u <= 0xdbff && k + 1 < scratchLength && (scratch[k + 1]! & 0xfc00) === 0xdc00) {
      out[b++] = u;
      out[b++] = scratch[++k]!;
    } else {
      out[b++] = BACKSLASH;
      const short = u <= BACKSLASH ? SHORT_ESCAPES[u]! : 0;
      if (short !== 0) {
        out[b++] = short;
      } else {
        out[b++] = 0x75; // u
        out[b++] = HEX_DIGITS.charCodeAt(u >>> 12);
        out[b++] = HEX_DIGITS.charCodeAt((u >>> 8) & 0xf);
        out[b++] = HEX_DIGITS.charCodeAt((u >>> 4) & 0xf);
        out[b++] = HEX_DIGITS.charCodeAt(u & 0xf);
      }
    }
  }
  out[b++] = QUOTE;
  builtLength = b;
  return newSegment(-1 - from, b);
}

const HEX_DIGITS = '0123456789abcdef';
/** The letter after the backslash of JSON.stringify's short escapes, by escaped code unit; 0 for none. */
const SHORT_ESCAPES = new Uint8Array(BACKSLASH + 1);
SHORT_ESCAPES[QUOTE] = QUOTE;
SHORT_ESCAPES[BACKSLASH] = BACKSLASH;
SHORT_ESCAPES[0x08] = 0x62; // \b
SHORT_ESCAPES[TAB] = 0x74; // \t
SHORT_ESCAPES[LF] = 0x6e; // \n
SHORT_ESCAPES[0x0c] = 0x66; // \f
SHORT_ESCAPES[CR] = 0x72; // \r

/** Makes room for `units` more code units in `built`. */
function reserveBuilt(units: number): void {
  if (builtLength + units <= built.length) return;
  const grown = new Uint16Array(Math.max(builtLength + units, 2 * built.length));
  grown.set(built.subarray(0, builtLength));
  built = grown;
}

/**
 * The code unit of the escape after the backslash at `at - 1`, or -1 when it is not one. A `\u`
 * escape is reported with 0x10000 added, so the caller knows it is six characters long.
 */
function escapedUnit(text: string, at: number): number {
  switch (at < text.length ? text.charCodeAt(at) : -1) {
    case QUOTE:
      return QUOTE;
    case BACKSLASH:
      return BACKSLASH;
    case SLASH:
      return SLASH;
    case 0x62: // \b
      return 0x08;
    case 0x66: // \f
      return 0x0c;
    case 0x6e: // \n
      return LF;
    case 0x72: // \r
      return CR;
    case 0x74: // \t
      return TAB;
    case 0x75: {
      // \uXXXX: exactly four hex digits.
      if (at + 4 >= text.length) return -1;
      const h1 = hex(text.charCodeAt(at + 1));
      const h2 = hex(text.charCodeAt(at + 2));
      const h3 = hex(text.charCodeAt(at + 3));
      const h4 = hex(text.charCodeAt(at + 4));
      if ((h1 | h2 | h3 | h4) < 0) return -1;
      return 0x10000 | (h1 << 12) | (h2 << 8) | (h3 << 4) | h4;
    }
    default:
      return -1;
  }
}

/** The value of a hex digit, or -1. */
function hex(c: number): number {
  if (c >= ZERO && c <= NINE) return c - ZERO;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** Scans `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; returns the end, or -1. */
function scanNumber(text: string, i: number): number {
  const n = text.length;
  let c = text.charCodeAt(i);
  if (c === MINUS) c = ++i < n ? text.charCodeAt(i) : -1;
  if (c === ZERO) {
    c = ++i < n ? text.charCodeAt(i) : -1;
  } else if (c > ZERO && c <= NINE) {
    do c = ++i < n ? text.charCodeAt(i) : -1;
    while (c >= ZERO && c <= NINE);
  } else {
    return -1;
  }
  if (c === DOT) {
    c = ++i < n ? text.charCodeAt(i) : -1;
    if (!(c >= ZERO && c <= NINE)) return -1;
    do c = ++i < n ? text.charCodeAt(i) : -1;
    while (c >= ZERO && c <= NINE);
  }
  if (c === LOWER_E || c === UPPER_E) {
    c = ++i < n ? text.charCodeAt(i) : -1;
    if (c === PLUS || c === MINUS) c = ++i < n ? text.charCodeAt(i) : -1;
    if (!(c >= ZERO && c <= NINE)) return -1;
    do c = ++i < n ? text.charCodeAt(i) : -1;
    while (c >= ZERO && c <= NINE);
  }
  return i;
}
