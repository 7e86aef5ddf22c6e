/**
 * A canonical form of JSON text for request fingerprints: two bodies that mean the same JSON value
 * get the same canonical text, whatever their key order, whitespace or string escapes.
 */

/**
 * A number's exact source text. JSON.parse would turn `12345678901234567890` and
 * `12345678901234567891` into the same double, so numbers are kept as written. The class is not
 * exported, so nothing a client sends can ever be mistaken for one.
 */
class NumberLexeme {
  readonly source: string;
  constructor(source: string) {
    this.source = source;
  }
}

/** The reviver's third argument (Node 22+, "JSON.parse source text access"). */
interface ReviverContext {
  source?: unknown;
}

type Reviver = (this: unknown, key: string, value: unknown) => unknown;

/**
 * The canonical form of a JSON text (sorted keys, no whitespace, numbers as written), or `undefined`
 * when the text is not valid JSON.
 * @example
 * canonicalJson('{ "b": 1, "a": "\\u0041" }'); // '{"a":"A","b":1}'
 */
export function canonicalJson(text: string): string | undefined {
  if (typeof text !== 'string') return undefined;
  let lossless = true;
  const reviver = (_key: string, value: unknown, context?: ReviverContext): unknown => {
    if (typeof value !== 'number') return value;
    const source = context?.source;
    if (typeof source === 'string') return new NumberLexeme(source);
    // A runtime without source text access would collapse distinct large numbers; report "not
    // canonicalisable" so callers fall back to hashing the raw bytes, which never collides.
    lossless = false;
    return value;
  };
  try {
    const value: unknown = JSON.parse(text, reviver as Reviver);
    if (!lossless) return undefined;
    const out: string[] = [];
    write(value, out);
    return out.join('');
  } catch {
    // Invalid JSON, or nesting deep enough to exhaust the stack (V8's reviver path recurses; a
    // few thousand levels): either way no canonical form, and callers hash the raw bytes instead.
    return undefined;
  }
}

function write(value: unknown, out: string[]): void {
  if (value instanceof NumberLexeme) {
    out.push(value.source);
  } else if (value === null || typeof value === 'string' || typeof value === 'boolean') {
    // JSON.stringify normalises escapes ("\u0041" -> "A") and escapes lone surrogates.
    out.push(JSON.stringify(value));
  } else if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(',');
      write(value[i], out);
    }
    out.push(']');
  } else {
    const object = value as Record<string, unknown>;
    // The default sort compares UTF-16 code units, the order RFC 8785 (JCS) uses too. Duplicate
    // keys were already resolved by JSON.parse (last one wins).
    const keys = Object.keys(object).sort();
    out.push('{');
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (i > 0) out.push(',');
      out.push(JSON.stringify(key), ':');
      write(object[key], out);
    }
    out.push('}');
  }
}
