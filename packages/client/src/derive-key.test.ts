import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidKey as coreIsValidKey, parseIdempotencyKey } from '@oncely/core';
import fc from 'fast-check';
import { childKey, deriveKey, isValidKey, type KeyPart } from './index.ts';

const part = fc.oneof(
  fc.string({ minLength: 1, unit: 'binary' }),
  fc.string({ minLength: 1, maxLength: 300 }),
  fc.integer(),
  fc.bigInt(),
);
const parts = fc.array(part, { minLength: 1, maxLength: 6 });

/** A key the core server parser accepts, bare (token) form included, and reads back unchanged. */
function acceptedByServer(key: string): boolean {
  const parsed = parseIdempotencyKey(key);
  return coreIsValidKey(key) && parsed.ok && parsed.key === key;
}

/** Same parts after numbers and bigints are written in decimal. */
const canonical = (ps: KeyPart[]) => JSON.stringify(ps.map(String));

describe('deriveKey', () => {
  it('is readable for short parts', async () => {
    assert.equal(await deriveKey('order', 'o_123', 'pay', 1), 'order:o_123:pay:1');
    assert.equal(await deriveKey('storm', 'run-7', 42n), 'storm:run-7:42');
    assert.equal(await deriveKey('a:b', 'c d', '%', 'é'), 'a%3Ab:c%20d:%25:%C3%A9');
  });

  it('is stable', async () => {
    await fc.assert(
      fc.asyncProperty(parts, async (ps) => assert.equal(await deriveKey(...ps), await deriveKey(...ps))),
    );
  });

  it('never lets part boundaries collide', async () => {
    assert.notEqual(await deriveKey('ab', 'c'), await deriveKey('a', 'bc'));
    assert.notEqual(await deriveKey('a:b'), await deriveKey('a', 'b'));
    assert.notEqual(await deriveKey('a%3Ab'), await deriveKey('a:b'));
    await fc.assert(
      fc.asyncProperty(parts, parts, async (a, b) => {
        fc.pre(canonical(a) !== canonical(b));
        assert.notEqual(await deriveKey(...a), await deriveKey(...b));
      }),
      { numRuns: 500 },
    );
  });

  it('always gives a key the server accepts, hashing what would not fit in 255 characters', async () => {
    await fc.assert(
      fc.asyncProperty(parts, async (ps) => {
        const key = await deriveKey(...ps);
        assert.ok(isValidKey(key) && acceptedByServer(key), key);
      }),
    );
    const long = await deriveKey('order', 'x'.repeat(300));
    assert.match(long, /^sha256~[A-Za-z0-9_-]{43}$/);
    assert.notEqual(long, await deriveKey('order', 'x'.repeat(301)));
    const exactly255 = await deriveKey('x'.repeat(255));
    assert.equal(exactly255.length, 255, 'a key that fits stays readable');
  });

  it('refuses no parts, empty parts, and values that are not ids', async () => {
    for (const bad of [
      [],
      [''],
      ['order', ''],
      [Number.NaN],
      [Number.POSITIVE_INFINITY],
      ['\ud800'],
      [undefined],
      [{}],
    ]) {
      await assert.rejects(deriveKey(...(bad as KeyPart[])), { code: 'ERR_ONCELY_CLIENT_INVALID_KEY' });
    }
  });
});

describe('childKey', () => {
  it('is stable, opaque, distinct per label and per parent, and a valid key', async () => {
    const a = await childKey('order_1:pay:1', 'charge');
    assert.equal(a, await childKey('order_1:pay:1', 'charge'));
    assert.match(a, /^charge_[A-Za-z0-9_-]{43}$/);
    assert.ok(!a.includes('order_1'), 'the parent key does not leak downstream');
    assert.notEqual(a, await childKey('order_1:pay:1', 'refund'));
    assert.notEqual(a, await childKey('order_1:pay:2', 'charge'));
    assert.ok(acceptedByServer(a));
    const longest = await childKey('k'.repeat(10_000), 'l'.repeat(64));
    assert.ok(acceptedByServer(longest) && longest.length === 108);
  });

  it('keeps parent and label apart', async () => {
    // Length prefixes: ("a_b", "c") and ("a", "b_c") hash different inputs.
    assert.notEqual((await childKey('x.', 'y')).slice(2), (await childKey('x', '.y')).slice(3));
  });

  it('refuses an empty parent and labels that would not be readable key prefixes', async () => {
    await assert.rejects(childKey('', 'charge'), { code: 'ERR_ONCELY_CLIENT_INVALID_KEY' });
    for (const label of ['', 'has space', 'a,b', 'x'.repeat(65), 'é']) {
      await assert.rejects(childKey('k', label), { code: 'ERR_ONCELY_CLIENT_INVALID_KEY' });
    }
  });
});
