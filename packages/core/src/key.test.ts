import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isValidKey, type KeyParseResult, MAX_KEY_LENGTH, parseIdempotencyKey } from './key.ts';

function assertKey(result: KeyParseResult, key: string): void {
  assert.deepEqual(result, { ok: true, key });
}

function assertInvalid(result: KeyParseResult): void {
  assert.equal(result.ok, false);
  assert.equal(result.ok === false && result.reason, 'invalid');
  assert.ok(result.ok === false && result.reason === 'invalid' && result.detail.length > 0);
}

const both = [{ strict: false }, { strict: true }];

describe('parseIdempotencyKey: missing', () => {
  test('undefined, null and an empty array are missing', () => {
    assert.deepEqual(parseIdempotencyKey(undefined), { ok: false, reason: 'missing' });
    assert.deepEqual(parseIdempotencyKey(null), { ok: false, reason: 'missing' });
    assert.deepEqual(parseIdempotencyKey([]), { ok: false, reason: 'missing' });
    assert.deepEqual(parseIdempotencyKey(undefined, { strict: true }), { ok: false, reason: 'missing' });
  });

  test('an empty or whitespace-only value is invalid, not missing', () => {
    assertInvalid(parseIdempotencyKey(''));
    assertInvalid(parseIdempotencyKey(' \t '));
    assertInvalid(parseIdempotencyKey(['']));
  });
});

describe('parseIdempotencyKey: header lines', () => {
  test('a single-entry array is that entry', () => {
    assertKey(parseIdempotencyKey(['abc']), 'abc');
    assertKey(parseIdempotencyKey(['"abc"'], { strict: true }), 'abc');
  });

  test('two or more header lines are invalid, even when equal', () => {
    assertInvalid(parseIdempotencyKey(['abc', 'abc']));
    assertInvalid(parseIdempotencyKey(['"a"', '"b"'], { strict: true }));
    assertInvalid(parseIdempotencyKey(['a', 'b', 'c']));
  });

  test('joined header lines are invalid', () => {
    assertInvalid(parseIdempotencyKey('abc, def'));
    assertInvalid(parseIdempotencyKey('abc,def'));
    assertInvalid(parseIdempotencyKey('"a", "b"'));
    assertInvalid(parseIdempotencyKey('"a","b"', { strict: true }));
  });
});

describe('parseIdempotencyKey: sf-string', () => {
  test('a quoted key and a bare key yield the same key', () => {
    assertKey(parseIdempotencyKey('"abc"'), 'abc');
    assertKey(parseIdempotencyKey('abc'), 'abc');
  });

  test('surrounding SP and HTAB are trimmed', () => {
    for (const options of both) assertKey(parseIdempotencyKey(' \t"abc"\t ', options), 'abc');
    assertKey(parseIdempotencyKey('\t abc \t'), 'abc');
  });

  test('other whitespace is not trimmed', () => {
    assertInvalid(parseIdempotencyKey('\n"abc"'));
    assertInvalid(parseIdempotencyKey('"abc"\r\n'));
    assertInvalid(parseIdempotencyKey('abc\n'));
    assertInvalid(parseIdempotencyKey('\u00a0abc'));
  });

  test('spaces and the allowed punctuation are kept inside quotes', () => {
    assertKey(parseIdempotencyKey('"a b  c"'), 'a b  c');
    assertKey(parseIdempotencyKey('" abc "'), ' abc ');
    assertKey(parseIdempotencyKey('"!#$%&\'()*+,-./:;<=>?@[]^_`{|}~"'), "!#$%&'()*+,-./:;<=>?@[]^_`{|}~");
  });

  test('\\" and \\\\ are unescaped', () => {
    assertKey(parseIdempotencyKey(String.raw`"a\"b"`), 'a"b');
    assertKey(parseIdempotencyKey(String.raw`"a\\b"`), 'a\\b');
    assertKey(parseIdempotencyKey(String.raw`"\\\""`), '\\"');
  });

  test('any other escape is invalid', () => {
    for (const value of [String.raw`"a\nb"`, String.raw`"a\tb"`, String.raw`"\u0041"`, String.raw`"a\ b"`]) {
      assertInvalid(parseIdempotencyKey(value));
    }
  });

  test('an unterminated string is invalid', () => {
    for (const value of ['"abc', '"', '"abc\\"', '"abc\\']) assertInvalid(parseIdempotencyKey(value));
  });

  test('control characters and non-ASCII inside quotes are invalid', () => {
    for (const value of ['"a\u0000b"', '"a\tb"', '"a\u007fb"', '"caf\u00e9"', '"\u{1f600}"', '"\ud800"']) {
      assertInvalid(parseIdempotencyKey(value));
    }
  });

  test('the empty string "" is invalid', () => {
    for (const options of both) assertInvalid(parseIdempotencyKey('""', options));
  });

  test('255 characters are accepted, 256 are not', () => {
    const max = 'k'.repeat(MAX_KEY_LENGTH);
    assertKey(parseIdempotencyKey(`"${max}"`), max);
    assertKey(parseIdempotencyKey(max), max);
    assertInvalid(parseIdempotencyKey(`"${max}k"`));
    assertInvalid(parseIdempotencyKey(`${max}k`));
  });

  test('the length limit applies to the decoded key, not the escaped text', () => {
    const quotes = '"'.repeat(MAX_KEY_LENGTH);
    assertKey(parseIdempotencyKey(`"${quotes.replaceAll('"', '\\"')}"`), quotes);
  });

  test('content after the closing quote is invalid', () => {
    for (const value of ['"abc"def', '"abc" def', '"abc" ;a=1', '"abc"=1', '"abc""def"']) {
      assertInvalid(parseIdempotencyKey(value));
    }
  });
});

describe('parseIdempotencyKey: parameters', () => {
  const valid = [
    ';a',
    ';a=?1',
    ';a=?0',
    ';a=token',
    ';a=*tok:en/x',
    ';a=42',
    ';a=-42',
    ';a=123456789012345',
    ';a=1.5',
    ';a=-123456789012.123',
    ';a="str \\" ing"',
    ';a=:aGVsbG8=:',
    ';a=::',
    ';a=@1659578233',
    ';a=%"f%c3%bc%c3%bcr"',
    ';a=1;b=2',
    '; a=1;  b',
    ';*key_1-.*=x',
  ];
  for (const params of valid) {
    test(`parses and ignores ${params}`, () => {
      for (const options of both) assertKey(parseIdempotencyKey(`"abc"${params}`, options), 'abc');
    });
  }

  const malformed = [
    ';',
    ';A=1',
    ';1a=1',
    ';a=',
    ';a=?2',
    ';a=?',
    ';a=1234567890123456',
    ';a=1234567890123.1',
    ';a=1.2345',
    ';a=1.',
    ';a=-',
    ';a=--1',
    ';a=1.2.3',
    ';a="unterminated',
    ';a="bad\\escape"',
    ';a=:not base64!:',
    ';a=:aGVsbG8',
    ';a=:a=b:',
    ';a=:abcde:',
    ';a=@1.5',
    ';a=%"caf\u00e9"',
    ';a=%"%C3%BC"',
    ';a=%"%c3"',
    ';a=%"unterminated',
    ';a=%noquote',
    ';a=(1 2)',
    ';a=1 ;b=2',
    ';a=1,b',
    ';a=b;',
  ];
  for (const params of malformed) {
    test(`rejects malformed ${JSON.stringify(params)}`, () => {
      assertInvalid(parseIdempotencyKey(`"abc"${params}`));
    });
  }
});

describe('parseIdempotencyKey: bare token', () => {
  test('any visible ASCII except a comma is accepted in lenient mode', () => {
    assertKey(
      parseIdempotencyKey('8e03978e-40d5-43e8-bc93-6894a57f9324'),
      '8e03978e-40d5-43e8-bc93-6894a57f9324',
    );
    assertKey(parseIdempotencyKey('a"b;c=d\\e'), 'a"b;c=d\\e');
    assertKey(parseIdempotencyKey('~'), '~');
  });

  test('a space inside, a control character or non-ASCII is invalid', () => {
    for (const value of ['a b', 'a\tb', 'a\u0000b', 'a\u007fb', 'caf\u00e9', '\ud800', 'a\udc00b']) {
      assertInvalid(parseIdempotencyKey(value));
    }
  });

  test('strict mode rejects a bare token', () => {
    assertInvalid(parseIdempotencyKey('abc', { strict: true }));
    assertKey(parseIdempotencyKey('"abc"', { strict: true }), 'abc');
  });
});

describe('parseIdempotencyKey: hostile input', () => {
  test('never throws', () => {
    const inputs: unknown[] = [
      '\u0000',
      '"\u0000"',
      '\ud800',
      '"\udfff"',
      '"'.repeat(100_000),
      'a'.repeat(1_000_000),
      `"${'a'.repeat(1_000_000)}"`,
      `"a";${'a=1;'.repeat(10_000)}`,
      42,
      {},
      [42],
      [undefined],
      new Proxy([], {
        get() {
          throw new Error('boom');
        },
      }),
    ];
    for (const input of inputs) {
      const result = parseIdempotencyKey(input as string);
      assert.equal(result.ok, false);
    }
    assertInvalid(parseIdempotencyKey('a'.repeat(1_000_000)));
    assertInvalid(parseIdempotencyKey(`"${'a'.repeat(1_000_000)}"`));
  });

  test('detail never echoes the key', () => {
    const secret = 'Secret-Key-7f3a';
    const inputs = [
      `${secret} x`,
      `${secret},${secret}`,
      `"${secret}`,
      `"${secret}\\n"`,
      `"${secret}"junk`,
      `"${secret}";A=1`,
      `"${secret}${'x'.repeat(300)}"`,
      `${secret}\u00e9`,
    ];
    for (const input of inputs) {
      const result = parseIdempotencyKey(input);
      assert.ok(result.ok === false && result.reason === 'invalid');
      assert.ok(!result.detail.includes(secret), result.detail);
      assert.ok(result.detail.length < 200);
    }
    const strictResult = parseIdempotencyKey(secret, { strict: true });
    assert.ok(strictResult.ok === false && strictResult.reason === 'invalid');
    assert.ok(!strictResult.detail.includes(secret));
  });
});

describe('isValidKey', () => {
  test('1..255 printable ASCII characters', () => {
    assert.equal(isValidKey('a'), true);
    assert.equal(isValidKey(' '), true);
    assert.equal(isValidKey('~'.repeat(MAX_KEY_LENGTH)), true);
    assert.equal(isValidKey(''), false);
    assert.equal(isValidKey('a'.repeat(MAX_KEY_LENGTH + 1)), false);
    assert.equal(isValidKey('a\u001fb'), false);
    assert.equal(isValidKey('a\u007fb'), false);
    assert.equal(isValidKey('\u00e9'), false);
    assert.equal(isValidKey('\ud800'), false);
  });
});
