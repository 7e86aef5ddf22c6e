import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLIENT_DEFAULTS, type ClientOptions, createClient, isOncelyClientError } from './index.ts';

const invalidOption = (error: unknown) =>
  isOncelyClientError(error) && error.code === 'ERR_ONCELY_CLIENT_INVALID_OPTION';

describe('options', () => {
  it('keeps every default in one frozen CLIENT_DEFAULTS', () => {
    assert.ok(Object.isFrozen(CLIENT_DEFAULTS));
    assert.ok(Object.isFrozen(CLIENT_DEFAULTS.methods));
    const { fetch, random, sleep, clock, ...values } = CLIENT_DEFAULTS;
    assert.deepEqual(values, {
      retries: 5,
      baseDelayMs: 250,
      maxDelayMs: 10_000,
      timeoutMs: 30_000,
      deadlineMs: 120_000,
      keyHeader: 'Idempotency-Key',
      keyFormat: 'token',
      methods: ['POST', 'PATCH'],
    });
    for (const fn of [fetch, random, sleep, clock]) assert.equal(typeof fn, 'function');
  });

  it('accepts no options and every valid one', () => {
    createClient();
    createClient({});
    createClient({
      fetch: globalThis.fetch,
      retries: 0,
      baseDelayMs: 0,
      maxDelayMs: 0,
      timeoutMs: 1,
      deadlineMs: 1,
      keyHeader: 'X-Request-Key',
      keyFormat: 'sf-string',
      methods: ['post', 'PUT'],
      onRetry: () => {},
      random: () => 0,
      sleep: async () => {},
      clock: () => 0,
      // An explicit undefined means "the default".
      ...({ retries: undefined } as ClientOptions),
    });
  });

  it('rejects unknown options at construction, typos included', () => {
    for (const options of [{ retry: 3 }, { timeout: 10 }, { onretry: () => {} }, { keyformat: 'token' }]) {
      assert.throws(
        () => createClient(options as ClientOptions),
        (error: unknown) => {
          assert.ok(invalidOption(error));
          assert.match((error as Error).message, /unknown option/);
          assert.ok(error instanceof TypeError);
          return true;
        },
      );
    }
  });

  it('rejects invalid values at construction', () => {
    const bad: Array<Record<string, unknown>> = [
      { retries: -1 },
      { retries: 1.5 },
      { retries: '3' },
      { retries: Number.NaN },
      { baseDelayMs: -1 },
      { baseDelayMs: 500, maxDelayMs: 100 },
      { maxDelayMs: 2 ** 31 },
      { timeoutMs: 0 },
      { timeoutMs: Number.POSITIVE_INFINITY },
      { deadlineMs: 0 },
      { keyHeader: '' },
      { keyHeader: 'Idempotency Key' },
      { keyFormat: 'quoted' },
      { methods: [] },
      { methods: 'POST' },
      { methods: ['PO ST'] },
      { fetch: 'fetch' },
      { random: 0.5 },
      { sleep: null },
      { clock: 123 },
      { onRetry: 'log' },
    ];
    for (const options of bad) {
      assert.throws(() => createClient(options as ClientOptions), invalidOption, JSON.stringify(options));
    }
    assert.throws(() => createClient(null as unknown as ClientOptions), invalidOption);
  });
});
