import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_JSON_DEPTH } from './canonical-json.ts';
import { isOncelyError } from './errors.ts';
import { canonicalQuery, type FingerprintInput, fingerprint } from './fingerprint.ts';

const base: FingerprintInput = { method: 'POST', path: '/orders' };
const fp = (overrides: Partial<FingerprintInput>): string => fingerprint({ ...base, ...overrides });
const JSON_TYPE = 'application/json';

describe('fingerprint', () => {
  test('is lowercase hex sha256 and deterministic', () => {
    assert.match(fp({}), /^[0-9a-f]{64}$/);
    assert.equal(fp({ body: 'x' }), fp({ body: 'x' }));
  });

  test('the method is upper-cased', () => {
    assert.equal(fp({ method: 'post' }), fp({ method: 'POST' }));
    assert.equal(fp({ method: 'Patch' }), fp({ method: 'PATCH' }));
    assert.notEqual(fp({ method: 'PATCH' }), fp({ method: 'POST' }));
  });

  test('only ASCII letters are upper-cased, so methods cannot collide through Unicode case mapping', () => {
    assert.notEqual(fp({ method: '\u00df' }), fp({ method: 'SS' }));
  });

  test('the path is exact', () => {
    assert.notEqual(fp({ path: '/orders' }), fp({ path: '/orders/' }));
    assert.notEqual(fp({ path: '/orders' }), fp({ path: '/Orders' }));
  });

  test('the query is sorted, with or without the leading "?"', () => {
    assert.equal(fp({ query: 'b=2&a=1' }), fp({ query: '?a=1&b=2' }));
    assert.notEqual(fp({ query: 'a=1&b=2' }), fp({ query: 'a=1&b=3' }));
    assert.notEqual(fp({ query: 'a=1' }), fp({}));
    assert.equal(fp({ query: '' }), fp({}));
    assert.equal(fp({ query: '?' }), fp({ query: null }));
  });

  test('the query is part of the fingerprint even for the same body', () => {
    assert.notEqual(fp({ query: 'dry_run=1', body: '{}' }), fp({ body: '{}' }));
  });

  test('JSON bodies are canonicalised', () => {
    const a = fp({ body: '{"b":1,"a":[1,2]}', contentType: JSON_TYPE });
    assert.equal(a, fp({ body: ' {\n "a" : [1, 2],\n "b" : 1 }\n', contentType: JSON_TYPE }));
    assert.equal(a, fp({ body: new TextEncoder().encode('{"a":[1,2],"b":1}'), contentType: JSON_TYPE }));
    assert.equal(a, fp({ body: '{"\\u0061":[1,2],"b":1}', contentType: JSON_TYPE }));
    assert.notEqual(a, fp({ body: '{"a":[2,1],"b":1}', contentType: JSON_TYPE }));
    assert.notEqual(a, fp({ body: '{"a":[1,2],"b":"1"}', contentType: JSON_TYPE }));
  });

  test('large JSON integers that round to the same double still differ', () => {
    assert.notEqual(
      fp({ body: '{"id":12345678901234567890}', contentType: JSON_TYPE }),
      fp({ body: '{"id":12345678901234567891}', contentType: JSON_TYPE }),
    );
  });

  test('canonical JSON bodies keep the fingerprints of oncely-fp-v1, byte for byte', () => {
    // Computed by the JSON.parse-with-reviver canonicaliser this scanner replaced.
    const golden: Array<[string, string]> = [
      ['{"amount":1}', '3d4957fda3bb4c2dfa2eaa3b85239000fc270f79c145181b35582591f10c8caa'],
      [
        ' { "b" : [1, 2.50, -0, 1E+3], "a": "\\u00e9\\ud83d\\ude00\\ud800" }',
        'f725b7283d2769de1f21d2a66a6aa0d220ff488c7cf995b6df5d3b2b83c3ca16',
      ],
      ['[]', '61b7d2340247aacd8fd444e79ff0e3685a1f901bf10880d57485a35daa1a71b6'],
      ['"x"', '6e579815086c6e4904fefe857a272fa5c372d5d2def896b531bef5aa06ad660d'],
      ['12345678901234567890', '94d36d6257046dfbc44c6010f7839aa3b98fde1ae9a929f34d5c63a4576b223e'],
      [
        '{"__proto__":{"x":null},"z":[true,false]}',
        'e0ddeb6c03318cd678d009ce0a5ece04b84e22a850a1648e91943ead585a82f0',
      ],
      ['{oops', '06b4718bac715f3250be39a05961a5f8fa2a5ad45b15ce5473911ac85d77a489'],
    ];
    for (const [body, expected] of golden) assert.equal(fp({ body, contentType: JSON_TYPE }), expected, body);
  });

  test('a JSON body naming a member twice is refused as ambiguous, at any depth and however escaped', () => {
    for (const body of [
      '{"amt":99,"amt":10}',
      '{"a":1,"b":2,"a":1}',
      '{"order":{"items":[{"sku":"x","qty":1,"qty":2}]}}',
      '{"a":1,"\\u0061":2}',
      '{"\u00e9":1,"\\u00e9":2}',
    ]) {
      for (const contentType of [JSON_TYPE, 'application/merge-patch+json; charset=utf-8']) {
        for (const bytes of [body, new TextEncoder().encode(body)]) {
          assert.throws(
            () => fp({ body: bytes, contentType }),
            (error: unknown) => {
              assert.ok(isOncelyError(error));
              assert.equal(error.code, 'ERR_ONCELY_BODY_AMBIGUOUS');
              assert.equal(error.status, 400);
              return true;
            },
            body,
          );
        }
      }
    }
  });

  test('the ambiguous-body error names neither the member nor the body', () => {
    const body = '{"secret_card_number":"4111111111111111","secret_card_number":"0"}';
    assert.throws(
      () => fp({ body, contentType: JSON_TYPE }),
      (error: unknown) => {
        assert.ok(isOncelyError(error));
        const problem = JSON.stringify(error.toProblem());
        for (const part of ['secret_card_number', '4111']) assert.ok(!problem.includes(part), part);
        assert.ok(!error.message.includes('{'));
        return true;
      },
    );
  });

  test('duplicate members in a body that is not JSON-typed are just bytes', () => {
    const body = '{"amt":99,"amt":10}';
    assert.equal(fp({ body, contentType: 'text/plain' }), fp({ body }));
    assert.notEqual(fp({ body }), fp({ body: '{"amt":10}' }));
  });

  test(`JSON nested deeper than ${MAX_JSON_DEPTH} levels hashes as raw bytes`, () => {
    const deep = `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`;
    assert.equal(fp({ body: deep, contentType: JSON_TYPE }), fp({ body: deep, contentType: 'text/plain' }));
    const bound = `${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`;
    assert.notEqual(
      fp({ body: bound, contentType: JSON_TYPE }),
      fp({ body: bound, contentType: 'text/plain' }),
    );
    // Raw bytes never collide: whitespace is no longer insignificant past the bound.
    assert.notEqual(
      fp({ body: deep, contentType: JSON_TYPE }),
      fp({ body: ` ${deep}`, contentType: JSON_TYPE }),
    );
  });

  test('JSON media types: case-insensitive, parameters ignored, +json suffixes', () => {
    const canonical = fp({ body: '{"a":1,"b":2}', contentType: JSON_TYPE });
    for (const contentType of [
      'Application/JSON',
      'application/json; charset=utf-8',
      ' application/json ;charset=UTF-8',
      'application/problem+json',
      'application/vnd.api+json; ext=x',
    ]) {
      assert.equal(fp({ body: '{ "b": 2, "a": 1 }', contentType }), canonical, contentType);
    }
  });

  test('other media types hash the raw bytes', () => {
    for (const contentType of [
      undefined,
      null,
      '',
      'text/plain',
      'application/jsonx',
      'application/x-json',
      '+json',
      'text/json',
    ]) {
      assert.notEqual(
        fp({ body: '{"a":1, "b":2}', contentType }),
        fp({ body: '{"b":2,"a":1}', contentType }),
      );
    }
  });

  test('a JSON content type with a body that is not JSON hashes the raw bytes', () => {
    assert.equal(
      fp({ body: '{oops', contentType: JSON_TYPE }),
      fp({ body: '{oops', contentType: 'text/plain' }),
    );
    assert.notEqual(
      fp({ body: '{oops', contentType: JSON_TYPE }),
      fp({ body: '{oops ', contentType: JSON_TYPE }),
    );
  });

  test('bytes that are not UTF-8 hash raw, and distinct invalid bytes never collide', () => {
    const a = fp({ body: new Uint8Array([0x22, 0xff, 0x22]), contentType: JSON_TYPE });
    const b = fp({ body: new Uint8Array([0x22, 0xfe, 0x22]), contentType: JSON_TYPE });
    assert.notEqual(a, b);
    assert.equal(a, fp({ body: new Uint8Array([0x22, 0xff, 0x22]) }));
  });

  test('a UTF-8 BOM is kept: such a body hashes raw', () => {
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('{"a":1}')]);
    assert.equal(fp({ body: withBom, contentType: JSON_TYPE }), fp({ body: withBom }));
  });

  test('the same JSON bytes differ as JSON and as raw: the body kind is hashed', () => {
    assert.notEqual(
      fp({ body: '{"a":1}', contentType: JSON_TYPE }),
      fp({ body: '{"a":1}', contentType: 'text/plain' }),
    );
  });

  test('strings are hashed as UTF-8, equal to the same bytes', () => {
    assert.equal(fp({ body: 'h\u00e9llo' }), fp({ body: new TextEncoder().encode('h\u00e9llo') }));
    assert.equal(fp({ body: 'h\u00e9llo' }), fp({ body: Buffer.from('h\u00e9llo', 'utf8') }));
  });

  test('a Uint8Array view hashes only its own bytes', () => {
    const buffer = Buffer.from('xxBODYxx');
    assert.equal(fp({ body: buffer.subarray(2, 6) }), fp({ body: 'BODY' }));
  });

  test('lone surrogates do not collide with U+FFFD', () => {
    assert.notEqual(fp({ body: '\ud800' }), fp({ body: '\ufffd' }));
    assert.notEqual(fp({ body: '\ud800' }), fp({ body: '\udc00' }));
    assert.notEqual(fp({ path: '/\ud800' }), fp({ path: '/\ufffd' }));
  });

  test('missing and empty bodies are the same, whatever the content type', () => {
    const none = fp({});
    for (const body of [undefined, null, '', new Uint8Array(0)]) {
      assert.equal(fp({ body }), none);
      assert.equal(fp({ body, contentType: JSON_TYPE }), none);
    }
    assert.notEqual(fp({ body: ' ' }), none);
  });

  test('bytes cannot shift between fields', () => {
    assert.notEqual(
      fingerprint({ method: 'POST', path: '/ab' }),
      fingerprint({ method: 'POST', path: '/a', query: 'b' }),
    );
    assert.notEqual(fingerprint({ method: 'POS', path: 'T/a' }), fingerprint({ method: 'POST', path: '/a' }));
    assert.notEqual(
      fingerprint({ method: 'POST', path: '/a', query: 'x=1' }),
      fingerprint({ method: 'POST', path: '/a', body: 'x=1' }),
    );
    assert.notEqual(
      fingerprint({ method: 'POST', path: '/a', body: 'raw' }),
      fingerprint({ method: 'POST', path: '/araw' }),
    );
    assert.notEqual(
      fingerprint({ method: 'POST', path: '' }),
      fingerprint({ method: 'POST', path: '', body: '\u0000' }),
    );
  });
});

describe('canonicalQuery', () => {
  test('sorts pairs by name, then value', () => {
    assert.equal(canonicalQuery('b=2&a=1'), 'a=1&b=2');
    assert.equal(canonicalQuery('?b=2&a=1'), 'a=1&b=2');
    assert.equal(canonicalQuery('a=2&b=1&a=1'), 'a=1&a=2&b=1');
  });

  test('repeated names keep every value', () => {
    assert.equal(canonicalQuery('tag=x&tag=y'), 'tag=x&tag=y');
    assert.notEqual(canonicalQuery('tag=x&tag=y'), canonicalQuery('tag=x'));
    assert.notEqual(canonicalQuery('tag=x&tag=x'), canonicalQuery('tag=x'));
  });

  test('decodes before comparing', () => {
    assert.equal(canonicalQuery('q=a%20b'), canonicalQuery('q=a+b'));
    assert.equal(canonicalQuery('%61=1'), canonicalQuery('a=1'));
    assert.equal(canonicalQuery('q=caf%C3%A9'), canonicalQuery('q=caf\u00e9'));
    assert.equal(canonicalQuery('q=%e2%82%ac'), canonicalQuery('q=%E2%82%AC'));
    assert.notEqual(canonicalQuery('q=a%26b'), canonicalQuery('q=a&b'));
  });

  test('empty and missing queries are empty', () => {
    assert.equal(canonicalQuery(undefined), '');
    assert.equal(canonicalQuery(null), '');
    assert.equal(canonicalQuery(''), '');
    assert.equal(canonicalQuery('?'), '');
  });

  test('only one leading "?" is removed', () => {
    assert.notEqual(canonicalQuery('??a=1'), canonicalQuery('?a=1'));
  });

  test('a stray "%" is data', () => {
    assert.equal(canonicalQuery('p=100%'), canonicalQuery('p=100%25'));
  });

  test('escapes that are not UTF-8 are kept verbatim instead of collapsing to U+FFFD', () => {
    assert.notEqual(canonicalQuery('a=%FF'), canonicalQuery('a=%FE'));
    assert.notEqual(canonicalQuery('a=%FF'), canonicalQuery('a=%EF%BF%BD'));
    assert.notEqual(canonicalQuery('a=\ud800'), canonicalQuery('a=\ufffd'));
    assert.equal(canonicalQuery('?b=%FF&a=1'), '!b=%FF&a=1');
  });
});
