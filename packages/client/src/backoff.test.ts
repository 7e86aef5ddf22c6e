import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { backoffDelay } from './backoff.ts';

it('stays in [0, min(maxDelayMs, baseDelayMs * 2^retry)) for any random source', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 60 }),
      fc.integer({ min: 1, max: 10_000 }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.oneof(fc.double({ min: 0, max: 1, maxExcluded: true }), fc.double()),
      (retry, baseDelayMs, extra, r) => {
        const maxDelayMs = baseDelayMs + extra;
        const cap = Math.min(maxDelayMs, baseDelayMs * 2 ** retry);
        const delay = backoffDelay(retry, { baseDelayMs, maxDelayMs, random: () => r });
        assert.ok(Number.isInteger(delay));
        assert.ok(delay >= 0 && delay < cap, `${delay} in [0, ${cap})`);
      },
    ),
  );
});

it('is the full-jitter formula: floor(random * cap)', () => {
  const opts = (r: number) => ({ baseDelayMs: 100, maxDelayMs: 1_000, random: () => r });
  assert.equal(backoffDelay(0, opts(0.5)), 50);
  assert.equal(backoffDelay(3, opts(0.5)), 400);
  assert.equal(backoffDelay(4, opts(0.5)), 500, 'capped at maxDelayMs');
  assert.equal(backoffDelay(1_000, opts(0.5)), 500, '2^1000 does not overflow the cap');
  assert.equal(backoffDelay(2, opts(0)), 0);
  assert.equal(backoffDelay(0, { baseDelayMs: 0, maxDelayMs: 0, random: () => 0.5 }), 0);
});
