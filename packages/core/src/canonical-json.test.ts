import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalJson } from './canonical-json.ts';

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

  test('duplicate keys resolve as JSON.parse does: the last wins', () => {
    assert.equal(canonicalJson('{"a":1,"b":2,"a":3}'), '{"a":3,"b":2}');
    assert.equal(canonicalJson('{"a":{"x":1},"a":[1]}'), '{"a":[1]}');
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
