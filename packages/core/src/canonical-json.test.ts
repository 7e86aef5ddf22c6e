import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalize, canonicalJson, MAX_JSON_DEPTH } from './canonical-json.ts';

describe('canonicalJson', () => {
  test('sorts object keys and drops insignificant whitespace', () => {
    assert.equal(
      canonicalJson(' { "b" : 1 ,\n\t"a" : [ 2 , { "d" : null , "c" : true } ] }\r\n'),
      '{"a":[2,{"c":true,"d":null}],"b":1}',
    );
  });

  test('keys sort by UTF-16 code units, not by locale or code point', () => {
    // "\u{1f600}" is the surrogate pair D83D DE00, which sorts before U+FF61 by code unit.
    assert.equal(
      canonicalJson('{"b":0,"a":0,"B":0,"\uff61":0,"\u{1f600}":0,"10":0,"9":0}'),
      '{"10":0,"9":0,"B":0,"a":0,"b":0,"\u{1f600}":0,"\uff61":0}',
    );
  });

  test('array order is kept', () => {
    assert.equal(canonicalJson('[3, 1, 2]'), '[3,1,2]');
    assert.notEqual(canonicalJson('[1,2]'), canonicalJson('[2,1]'));
  });

  test('string escapes are normalised', () => {
    assert.equal(canonicalJson('"\\u0041"'), canonicalJson('"A"'));
    assert.equal(canonicalJson('{"\\u0061":"\\/\\u00e9"}'), '{"a":"/\u00e9"}');
    assert.equal(canonicalJson('"\\ud83d\\ude00"'), '"\u{1f600}"');
    assert.equal(canonicalJson('"line\\nbreak\\u0000"'), '"line\\nbreak\\u0000"');
  });

  test('lone surrogates stay escaped, so the output is well-formed', () => {
    assert.equal(canonicalJson('"\\ud800"'), '"\\ud800"');
    assert.notEqual(canonicalJson('"\\ud800"'), canonicalJson('"\\ufffd"'));
  });

  test('numbers keep their source text, so large integers never collide', () => {
    assert.equal(canonicalJson('12345678901234567890'), '12345678901234567890');
    assert.notEqual(canonicalJson('12345678901234567890'), canonicalJson('12345678901234567891'));
    assert.equal(canonicalJson('{"n": 1.50e+3}'), '{"n":1.50e+3}');
    assert.equal(canonicalJson('[-0, 0.1, 1E-7]'), '[-0,0.1,1E-7]');
  });

  test('a member named twice in one object makes the text ambiguous, not canonical', () => {
    for (const text of [
      '{"a":1,"a":1}',
      '{"a":1,"b":2,"a":3}',
      '{"a":{"x":1},"a":[1]}',
      '{"b":1,"a":2,"b":3}',
      ' { "amt" : 99 ,\n "amt" : 10 } ',
    ]) {
      assert.equal(canonicalJson(text), undefined, text);
      assert.deepEqual(canonicalize(text), { kind: 'duplicate' }, text);
    }
  });

  test('duplicates are found at any depth', () => {
    for (const text of [
      '[{"x":{"a":1,"a":2}}]',
      '{"outer":[1,{"k":null,"k":true}],"z":0}',
      '[[[[{"deep":[{"a":0,"b":0,"a":0}]}]]]]',
    ]) {
      assert.deepEqual(canonicalize(text), { kind: 'duplicate' }, text);
    }
  });

  test('duplicates are compared after unescaping', () => {
    for (const text of [
      '{"a":1,"\\u0061":2}',
      '{"\\u0061":1,"a":2}',
      '{"\u00e9":1,"\\u00E9":2}',
      '{"\u{1f600}":1,"\\ud83d\\ude00":2}',
      '{"\\n":1,"\\u000a":2}',
      '{"\\/":1,"/":2}',
      '{"\\ud800":1,"\ud800":2}',
    ]) {
      assert.deepEqual(canonicalize(text), { kind: 'duplicate' }, text);
    }
  });

  test('in a large object, duplicates far apart are found', () => {
    const names = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, '0')}`).reverse();
    const unique = `{${names.map((name) => `"${name}":0`).join(',')}}`;
    assert.equal(
      canonicalJson(unique),
      `{${[...names]
        .reverse()
        .map((name) => `"${name}":0`)
        .join(',')}}`,
    );
    assert.deepEqual(canonicalize(`${unique.slice(0, -1)},"k39":1}`), { kind: 'duplicate' });
    assert.deepEqual(canonicalize(`{"k00":1,${unique.slice(1)}`), { kind: 'duplicate' });
  });

  test('the same name in different objects, or in other case, is no duplicate', () => {
    assert.equal(canonicalJson('{"a":{"a":1}}'), '{"a":{"a":1}}');
    assert.equal(canonicalJson('[{"a":1},{"a":2}]'), '[{"a":1},{"a":2}]');
    assert.equal(canonicalJson('{"a":1,"A":2,"a ":3}'), '{"A":2,"a":1,"a ":3}');
    assert.equal(canonicalJson('{"\\ud800":1,"\\udc00":2}'), '{"\\ud800":1,"\\udc00":2}');
  });

  test('invalid JSON is reported as invalid, even when it also names a member twice', () => {
    assert.deepEqual(canonicalize('{"a":1,"a":2} x'), { kind: 'invalid' });
    assert.deepEqual(canonicalize('{"a":1,"a":2'), { kind: 'invalid' });
    assert.deepEqual(canonicalize('{"a":1}'), { kind: 'canonical', text: '{"a":1}' });
  });

  test('__proto__ is an ordinary key', () => {
    assert.equal(canonicalJson('{"b":1,"__proto__":{"x":1}}'), '{"__proto__":{"x":1},"b":1}');
  });

  test('a value that looks like an internal marker is just data', () => {
    assert.equal(canonicalJson('{"source":"1"}'), '{"source":"1"}');
    assert.notEqual(canonicalJson('{"source":"1"}'), canonicalJson('1'));
  });

  test('top-level scalars are JSON texts too', () => {
    assert.equal(canonicalJson('null'), 'null');
    assert.equal(canonicalJson(' true '), 'true');
    assert.equal(canonicalJson('"x"'), '"x"');
    assert.equal(canonicalJson('{}'), '{}');
    assert.equal(canonicalJson('[]'), '[]');
  });

  test('invalid JSON gives undefined', () => {
    for (const text of [
      '',
      ' ',
      '{',
      '{"a":1,}',
      '[1,]',
      "{'a':1}",
      'NaN',
      '01',
      '1.',
      'undefined',
      '\ufeff{}',
      '{"a":1} x',
    ]) {
      assert.equal(canonicalJson(text), undefined, JSON.stringify(text));
    }
  });

  test('strings print as JSON.stringify prints the decoded string', () => {
    assert.equal(canonicalJson('"\\u00E9\\u00e9\u00e9"'), '"\u00e9\u00e9\u00e9"');
    assert.equal(canonicalJson('"\\b\\f\\n\\r\\t\\"\\\\\\/"'), '"\\b\\f\\n\\r\\t\\"\\\\/"');
    assert.equal(canonicalJson('"\\u0008\\u001F\\u007f\\u2028"'), '"\\b\\u001f\u007f\u2028"');
    // A raw lone surrogate in the text is escaped too; a raw and an escaped half make a pair.
    assert.equal(canonicalJson('"\ud800"'), '"\\ud800"');
    assert.equal(canonicalJson('"\udc00\ud800"'), '"\\udc00\\ud800"');
    assert.equal(canonicalJson('"\ud83d\\ude00"'), '"\u{1f600}"');
    assert.equal(canonicalJson('"\\ud83d\ude00"'), '"\u{1f600}"');
    assert.equal(canonicalJson('"\\ud83d"'), '"\\ud83d"');
    for (const s of ['', 'plain', '\u0000\u001f"\\', '\ud800x\udfff', '\u{1f600}\u2029', 'x'.repeat(5000)]) {
      assert.equal(canonicalJson(JSON.stringify(s)), JSON.stringify(s), JSON.stringify(s));
    }
  });

  test('objects are rebuilt only where they differ: nested changes, whitespace and order together', () => {
    assert.equal(
      canonicalJson('{"b":[1, 2],"a":{"d":"\\u0041","c":{ }},"c":[ ],"\\u0062b":0}'),
      '{"a":{"c":{},"d":"A"},"b":[1,2],"bb":0,"c":[]}',
    );
    assert.equal(canonicalJson('[{"b":1,"a":2}, {"a":2,"b":1}]'), '[{"a":2,"b":1},{"a":2,"b":1}]');
  });

  test('invalid tokens inside values are refused', () => {
    for (const text of [
      '"\\x"',
      '"\\u12"',
      '"\\u12g4"',
      '"a\nb"',
      '"unterminated',
      '"\\',
      '-',
      '-01',
      '1e',
      '1e+',
      '.5',
      '+1',
      '1.e3',
      'tru',
      'nul',
      'trueX',
      '[1 2]',
      '{"a" 1}',
      '{"a":1 "b":2}',
      '{1:2}',
      '[1}',
      '{"a":1]',
    ]) {
      assert.deepEqual(canonicalize(text), { kind: 'invalid' }, JSON.stringify(text));
    }
    assert.equal(canonicalJson('[0e0,-0.0E-0,1E+00]'), '[0e0,-0.0E-0,1E+00]');
  });

  test(`nesting is bounded at ${MAX_JSON_DEPTH} levels, without recursion`, () => {
    const arrays = (depth: number, inner = '') => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
    const objects = (depth: number) => `${'{"b":0,"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    assert.equal(canonicalJson(arrays(MAX_JSON_DEPTH)), arrays(MAX_JSON_DEPTH));
    assert.equal(canonicalJson(arrays(MAX_JSON_DEPTH, ' "\\u0041" ')), arrays(MAX_JSON_DEPTH, '"A"'));
    assert.equal(
      canonicalJson(objects(MAX_JSON_DEPTH)),
      `${'{"a":'.repeat(MAX_JSON_DEPTH)}1${',"b":0}'.repeat(MAX_JSON_DEPTH)}`,
    );
    assert.deepEqual(canonicalize(arrays(MAX_JSON_DEPTH + 1)), { kind: 'too-deep' });
    assert.deepEqual(canonicalize(objects(MAX_JSON_DEPTH + 1)), { kind: 'too-deep' });
    assert.equal(
      canonicalJson(`[${arrays(MAX_JSON_DEPTH - 1)},${arrays(MAX_JSON_DEPTH - 1)}]`),
      `[${arrays(MAX_JSON_DEPTH - 1)},${arrays(MAX_JSON_DEPTH - 1)}]`,
    );
  });

  test('a call leaves nothing behind for the next one', () => {
    const big = `[${Array.from({ length: 30_000 }, (_, i) => `{"b":${i},"a":"\\u00e9${i}"}`).join(', ')}]`;
    const expected = `[${Array.from({ length: 30_000 }, (_, i) => `{"a":"\u00e9${i}","b":${i}}`).join(',')}]`;
    assert.equal(canonicalJson(big), expected);
    assert.equal(canonicalJson('{"b":1, "a":2}'), '{"a":2,"b":1}');
    assert.deepEqual(canonicalize('{"a":1,"a":2}'), { kind: 'duplicate' });
    assert.equal(canonicalJson(big), expected);
  });

  test('deep nesting is handled or reported, never thrown', () => {
    assert.equal(
      canonicalJson(`${'['.repeat(1000)}${']'.repeat(1000)}`),
      `${'['.repeat(1000)}${']'.repeat(1000)}`,
    );
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const result = canonicalJson(deep);
    assert.ok(result === undefined || result === deep);
  });
});
