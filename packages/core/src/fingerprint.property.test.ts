import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalJson } from './canonical-json.ts';
import { isOncelyError } from './errors.ts';
import { canonicalQuery, fingerprint } from './fingerprint.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const jsonValue = fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<Json>;
const jsonUnicodeValue = fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' }) as fc.Arbitrary<Json>;
const anyJson = fc.oneof(jsonValue, jsonUnicodeValue);

const bodyFp = (body: string): string =>
  fingerprint({ method: 'POST', path: '/orders', body, contentType: 'application/json' });

function isObject(value: Json): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A tiny deterministic PRNG, so a shrunk counterexample replays exactly. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A member to add to the object that comes `target`-th (depth first) among the non-empty ones. */
interface Duplicate {
  target: number;
  value: Json;
}

/**
 * Serialises `value` the way a different client might: shuffled keys, random JSON whitespace
 * and random `\uXXXX` escapes in strings. With `duplicate`, one object names one of its members
 * a second time (escaped at random like every key), with the duplicate's value.
 */
function scramble(value: Json, rand: () => number, duplicate?: Duplicate): string {
  let objects = 0;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const ws = () => pick(['', '', ' ', '\n', '\t', '\r\n  ']);
  const str = (s: string): string => {
    let out = '"';
    for (let i = 0; i < s.length; i++) {
      const unit = s.charCodeAt(i);
      out += rand() < 0.3 ? `\\u${unit.toString(16).padStart(4, '0')}` : JSON.stringify(s[i]).slice(1, -1);
    }
    return `${out}"`;
  };
  const go = (v: Json): string => {
    if (Array.isArray(v)) return `[${ws()}${v.map((item) => `${ws()}${go(item)}${ws()}`).join(',')}]`;
    if (isObject(v)) {
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [keys[i], keys[j]] = [keys[j]!, keys[i]!];
      }
      const members = keys.map((k) => `${ws()}${str(k)}${ws()}:${ws()}${go(v[k]!)}${ws()}`);
      if (keys.length > 0 && objects++ === duplicate?.target) {
        const again = `${ws()}${str(pick(keys))}${ws()}:${ws()}${go(duplicate.value)}${ws()}`;
        members.splice(Math.floor(rand() * (members.length + 1)), 0, again);
      }
      return `{${members.join(',')}${ws()}}`;
    }
    if (typeof v === 'string') return str(v);
    return JSON.stringify(v);
  };
  return `${ws()}${go(value)}${ws()}`;
}

test('shuffling object keys, adding whitespace and escaping characters never changes the fingerprint', () => {
  fc.assert(
    fc.property(anyJson, fc.integer(), (value, seed) => {
      assert.equal(bodyFp(scramble(value, random(seed))), bodyFp(JSON.stringify(value)));
    }),
  );
});

/** The canonical form, built from the value itself: sorted keys by code unit, no whitespace. */
function sortedJson(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (isObject(value)) {
    const members = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson(value[k]!)}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

test('the canonical text is the sorted compact JSON of the value, however it was serialised', () => {
  fc.assert(
    fc.property(anyJson, fc.integer(), (value, seed) => {
      assert.equal(canonicalJson(scramble(value, random(seed))), sortedJson(value));
    }),
  );
});

function nonEmptyObjects(value: Json): number {
  if (Array.isArray(value)) return value.reduce<number>((sum, item) => sum + nonEmptyObjects(item), 0);
  if (!isObject(value)) return 0;
  const own = Object.keys(value).length > 0 ? 1 : 0;
  return Object.values(value).reduce<number>((sum, item) => sum + nonEmptyObjects(item), own);
}

test('naming a member twice in any object, however escaped, makes a JSON body ambiguous', () => {
  fc.assert(
    fc.property(
      anyJson,
      fc.jsonValue({ maxDepth: 1 }) as fc.Arbitrary<Json>,
      fc.nat(),
      fc.integer(),
      (value, again, index, seed) => {
        const objects = nonEmptyObjects(value);
        fc.pre(objects > 0);
        const body = scramble(value, random(seed), { target: index % objects, value: again });
        assert.equal(canonicalJson(body), undefined);
        assert.throws(
          () => bodyFp(body),
          (error: unknown) => isOncelyError(error) && error.code === 'ERR_ONCELY_BODY_AMBIGUOUS',
        );
      },
    ),
  );
});

type Edit = (root: Json) => Json;

/** Every single-step edit of `value`: replace one leaf, add a key to an object, remove one. */
function edits(value: Json, replacement: Json, newKey: string): Edit[] {
  const result: Edit[] = [];
  const visit = (node: Json, rebuild: (next: Json) => Json): void => {
    if (Array.isArray(node)) {
      node.forEach((item, i) => {
        visit(item, (next) => rebuild(node.map((old, j) => (j === i ? next : old))));
      });
    } else if (isObject(node)) {
      const entries = Object.entries(node);
      const fromEntries = (list: [string, Json][]): Json => {
        // defineProperty, so a "__proto__" key stays an own data property.
        const out: { [key: string]: Json } = {};
        for (const [k, v] of list)
          Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
        return out;
      };
      if (!Object.hasOwn(node, newKey))
        result.push(() => rebuild(fromEntries([...entries, [newKey, replacement]])));
      entries.forEach(([key, item], i) => {
        result.push(() => rebuild(fromEntries(entries.filter((_, j) => j !== i))));
        visit(item, (next) => rebuild(fromEntries(entries.map(([k, old]) => [k, k === key ? next : old]))));
      });
    } else if (JSON.stringify(node) !== JSON.stringify(replacement)) {
      result.push(() => rebuild(replacement));
    }
  };
  visit(value, (next) => next);
  return result;
}

test('changing one leaf, adding a key or removing a key always changes the fingerprint', () => {
  fc.assert(
    fc.property(
      anyJson,
      fc.jsonValue({ maxDepth: 1 }) as fc.Arbitrary<Json>,
      fc.string(),
      fc.nat(),
      fc.integer(),
      (value, replacement, newKey, index, seed) => {
        const candidates = edits(value, replacement, newKey);
        fc.pre(candidates.length > 0);
        const edited = candidates[index % candidates.length]!(value);
        assert.notEqual(JSON.stringify(edited), JSON.stringify(value), 'the edit must change the value');
        assert.notEqual(bodyFp(scramble(edited, random(seed))), bodyFp(JSON.stringify(value)));
      },
    ),
  );
});

test('query pair order never changes the canonical query, a changed value always does', () => {
  const part = fc.string({ unit: 'binary', maxLength: 6 });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(part, part), { minLength: 1, maxLength: 6 }),
      fc.integer(),
      fc.nat(),
      fc.string({ minLength: 1, maxLength: 3 }),
      (pairs, seed, index, suffix) => {
        const rand = random(seed);
        const shuffled = [...pairs].sort(() => rand() - 0.5);
        const query = new URLSearchParams(pairs).toString();
        assert.equal(canonicalQuery(new URLSearchParams(shuffled).toString()), canonicalQuery(query));
        const changed = pairs.map(([name, val], i): [string, string] => [
          name,
          i === index % pairs.length ? val + suffix : val,
        ]);
        assert.notEqual(canonicalQuery(new URLSearchParams(changed).toString()), canonicalQuery(query));
      },
    ),
  );
});
