import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isValidKey, type KeyParseResult, MAX_KEY_LENGTH, parseIdempotencyKey } from './key.ts';

const charIn = (min: number, max: number) => fc.integer({ min, max }).map((c) => String.fromCharCode(c));
const stringOf = (chars: string) => fc.constantFrom(...chars);

/** Every character a valid key may hold: printable ASCII. */
const validKey = fc.string({ unit: charIn(0x20, 0x7e), minLength: 1, maxLength: MAX_KEY_LENGTH });

function toSfString(key: string): string {
  return `"${key.replace(/[\\"]/g, '\\$&')}"`;
}

const lcalpha = 'abcdefghijklmnopqrstuvwxyz';
const digit = '0123456789';
const alpha = `${lcalpha}${lcalpha.toUpperCase()}`;

/** RFC 9651 bare items, as a serialiser would write them. */
const bareItem = fc.oneof(
  fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }).map(String),
  fc
    .tuple(fc.integer({ min: -999_999_999_999, max: 999_999_999_999 }), fc.integer({ min: 0, max: 999 }))
    .map(([whole, fraction]) => `${whole}.${fraction}`),
  validKey.map(toSfString),
  fc.string({ unit: charIn(0x20, 0x7e) }).map(toSfString),
  fc
    .tuple(stringOf(`${alpha}*`), fc.string({ unit: stringOf(`${alpha}${digit}!#$%&'*+-.^_\`|~:/`) }))
    .map(([first, rest]) => first + rest),
  fc.uint8Array({ maxLength: 32 }).map((bytes) => `:${Buffer.from(bytes).toString('base64')}:`),
  fc.boolean().map((b) => (b ? '?1' : '?0')),
  fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }).map((n) => `@${n}`),
  fc.string({ unit: 'binary' }).map((s) => `%"${[...Buffer.from(s, 'utf8')].map(displayByte).join('')}"`),
);

function displayByte(byte: number): string {
  const isPlain = byte >= 0x20 && byte <= 0x7e && byte !== 0x22 && byte !== 0x25;
  return isPlain ? String.fromCharCode(byte) : `%${byte.toString(16).padStart(2, '0')}`;
}

const paramKey = fc
  .tuple(stringOf(`${lcalpha}*`), fc.string({ unit: stringOf(`${lcalpha}${digit}_-.*`), maxLength: 8 }))
  .map(([first, rest]) => first + rest);

const parameters = fc
  .array(
    fc
      .tuple(fc.nat({ max: 2 }), paramKey, fc.option(bareItem, { nil: undefined }))
      .map(([spaces, key, value]) => `;${' '.repeat(spaces)}${key}${value === undefined ? '' : `=${value}`}`),
    { maxLength: 4 },
  )
  .map((params) => params.join(''));

const ows = fc.string({ unit: stringOf(' \t'), maxLength: 3 });

test('every valid sf-string round-trips, in strict and lenient mode, with parameters and OWS', () => {
  fc.assert(
    fc.property(validKey, parameters, ows, ows, (key, params, before, after) => {
      const header = `${before}${toSfString(key)}${params}${after}`;
      for (const strict of [false, true]) {
        assert.deepEqual(parseIdempotencyKey(header, { strict }), { ok: true, key });
        assert.deepEqual(parseIdempotencyKey([header], { strict }), { ok: true, key });
      }
    }),
  );
});

test('every bare key without spaces or commas parses to itself in lenient mode only', () => {
  const bareKey = fc
    .string({ unit: charIn(0x21, 0x7e), minLength: 1, maxLength: MAX_KEY_LENGTH })
    .filter((s) => !s.includes(',') && !s.startsWith('"'));
  fc.assert(
    fc.property(bareKey, (key) => {
      assert.deepEqual(parseIdempotencyKey(key), { ok: true, key });
      assert.equal(parseIdempotencyKey(key, { strict: true }).ok, false);
    }),
  );
});

function assertSound(result: KeyParseResult): void {
  if (result.ok) {
    assert.ok(isValidKey(result.key), 'an ok key is 1..255 printable ASCII characters');
  } else if (result.reason === 'invalid') {
    assert.equal(typeof result.detail, 'string');
  }
}

/** Characters that drive the parser through its branches, plus arbitrary UTF-16 code units. */
const structured = fc.string({
  unit: fc.oneof(stringOf('"\\;=,:?@%*-.0123456789aZ \t'), charIn(0, 0xffff)),
  maxLength: 300,
});

test('arbitrary strings never throw and never yield a key outside the alphabet', () => {
  const anyString = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 400 }),
    fc.string({ unit: charIn(0, 0xffff), maxLength: 400 }),
    structured,
    structured.map((s) => `"${s}`),
    fc.tuple(validKey, structured).map(([key, rest]) => `${toSfString(key)}${rest}`),
  );
  fc.assert(
    fc.property(anyString, fc.boolean(), (value, strict) => {
      assertSound(parseIdempotencyKey(value, { strict }));
      assertSound(parseIdempotencyKey([value], { strict }));
    }),
  );
});

test('arbitrary bytes decoded as latin1 never throw and never yield a key outside the alphabet', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 3 }),
      fc.boolean(),
      (lines, strict) => {
        // Node's http parser hands header values over as latin1 strings.
        const values = lines.map((bytes) => Buffer.from(bytes).toString('latin1'));
        assertSound(parseIdempotencyKey(values, { strict }));
        for (const value of values) assertSound(parseIdempotencyKey(value, { strict }));
      },
    ),
  );
});
