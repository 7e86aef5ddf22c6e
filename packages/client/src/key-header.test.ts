import assert from 'node:assert/strict';
import { it } from 'node:test';
import { parseIdempotencyKey } from '@oncely/core';
import fc from 'fast-check';
import { formatKey, isValidKey, readKey } from './key-header.ts';

const printable = fc.string({
  minLength: 1,
  maxLength: 255,
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
});

it('writes every valid key so that the server reads back the same key, in both formats', () => {
  fc.assert(
    fc.property(printable, fc.constantFrom('token' as const, 'sf-string' as const), (key, format) => {
      const header = formatKey(key, format);
      const parsed = parseIdempotencyKey(header, { strict: format === 'sf-string' });
      assert.deepEqual(parsed, { ok: true, key });
      assert.equal(readKey(header), key);
    }),
  );
});

it('agrees with the server on what a valid key is', () => {
  assert.ok(isValidKey('a'));
  assert.ok(isValidKey('~'.repeat(255)));
  for (const bad of ['', 'x'.repeat(256), 'tab\t', 'caf\u00e9', 42, null])
    assert.equal(isValidKey(bad), false);
});
