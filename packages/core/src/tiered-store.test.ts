import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isOncelyError } from './errors.ts';
import { memoryStore } from './memory-store.ts';
import { createOncely } from './oncely.ts';
import type { RecordCache, Store } from './store.ts';
import { tieredStore } from './tiered-store.ts';

type Counts = Record<string, number>;

/** Counts the calls a store receives; `fail` makes the named calls throw (fault injection). */
function counted<T extends object>(inner: T, fail: Set<string> = new Set()): { store: T; calls: Counts } {
  const calls: Counts = {};
  const store = new Proxy(inner, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function' || typeof name !== 'string' || name === 'close') return value;
      return async (...args: unknown[]) => {
        calls[name] = (calls[name] ?? 0) + 1;
        if (fail.has(name)) throw new Error(`${name} failed (injected)`);
        return value.apply(target, args);
      };
    },
  });
  return { store, calls };
}

const body = (text: string) => new TextEncoder().encode(text);
const request = { scope: 'acct_1', key: 'order_1:pay:1', fingerprint: 'fp-1' };

function setup(options: { cacheFails?: string[]; cacheTimeoutMs?: number; cache?: RecordCache } = {}) {
  const cache = counted<RecordCache>(
    options.cache ?? memoryStore({ sweepIntervalMs: 0 }),
    new Set(options.cacheFails),
  );
  const durable = counted<Store>(memoryStore({ sweepIntervalMs: 0 }));
  const errors: string[] = [];
  const store = tieredStore({
    cache: cache.store,
    durable: durable.store,
    onCacheError: (_error, operation) => errors.push(operation),
    ...(options.cacheTimeoutMs ? { cacheTimeoutMs: options.cacheTimeoutMs } : {}),
  });
  const oncely = createOncely({ store });
  const reset = (): void => {
    for (const calls of [cache.calls, durable.calls])
      for (const name of Object.keys(calls)) delete calls[name];
  };
  return { store, oncely, cache: cache.calls, durable: durable.calls, errors, reset };
}

async function firstExecution(oncely: ReturnType<typeof createOncely>, store: Store) {
  const decision = await oncely.begin(request);
  assert.equal(decision.kind, 'execute');
  assert.ok(decision.kind === 'execute');
  assert.equal(await decision.commit({ status: 201, headers: [], body: body('{"id":"pay_1"}') }), 'stored');
  // The cache fill runs beside the request; close() and the next tick let it land.
  await new Promise((resolve) => setImmediate(resolve));
  return store;
}

describe('tieredStore', () => {
  it('replays from the cache alone: the durable store is not asked', async () => {
    const { store, oncely, cache, durable, reset } = setup();
    await firstExecution(oncely, store);
    reset();
    const replay = await oncely.begin(request);
    assert.equal(replay.kind, 'replay');
    assert.ok(replay.kind === 'replay');
    assert.equal(new TextDecoder().decode(replay.response.body), '{"id":"pay_1"}');
    assert.deepEqual(cache, { get: 1 });
    assert.deepEqual(durable, {});
    await store.close();
  });

  it('sends acquire, completion and release to the durable store and copies completed records', async () => {
    const { store, oncely, cache, durable } = setup();
    await firstExecution(oncely, store);
    assert.deepEqual({ ...durable }, { acquire: 1, complete: 1 });
    assert.deepEqual({ ...cache }, { get: 1, put: 1 });
    const released = await oncely.begin({ ...request, key: 'k2' });
    assert.ok(released.kind === 'execute');
    await released.abort();
    assert.equal(durable.release, 1);
    assert.equal(cache.put, 1, 'nothing is cached for a released key');
    await store.close();
  });

  it('refuses a reused key from the cache (422), like the durable store would', async () => {
    const { store, oncely, durable, reset } = setup();
    await firstExecution(oncely, store);
    reset();
    const reused = await oncely.begin({ ...request, fingerprint: 'fp-2' });
    assert.ok(reused.kind === 'reject');
    assert.equal(reused.error.code, 'ERR_ONCELY_KEY_REUSED');
    assert.deepEqual(durable, {});
    await store.close();
  });

  it('fills the cache when the durable store answers a replay the cache missed', async () => {
    const { store, oncely, cache, durable, reset } = setup({ cacheFails: ['put'] });
    await firstExecution(oncely, store);
    reset();
    assert.equal((await oncely.begin(request)).kind, 'replay');
    assert.deepEqual(durable, { acquire: 1 }, 'the missing copy sends the replay to the durable store');
    assert.equal(cache.put, 1, 'and it tries to copy the record again');
    await store.close();
  });

  it('degrades to the durable store when the cache fails, and reports it', async () => {
    const { store, oncely, durable, errors } = setup({ cacheFails: ['get', 'put'] });
    await firstExecution(oncely, store);
    assert.equal((await oncely.begin(request)).kind, 'replay');
    assert.equal(durable.acquire, 2);
    await store.close(); // waits for the second fill
    assert.deepEqual(errors, ['get', 'put', 'get', 'put']);
  });

  it('treats a cache that hangs as failed after cacheTimeoutMs', async () => {
    const hanging: RecordCache = {
      name: 'hanging',
      get: () => new Promise(() => {}),
      put: () => new Promise(() => {}),
      close: async () => {},
    };
    const { store, oncely, errors } = setup({ cache: hanging, cacheTimeoutMs: 20 });
    const started = performance.now();
    await firstExecution(oncely, store);
    assert.equal((await oncely.begin(request)).kind, 'replay');
    assert.ok(performance.now() - started < 1000, 'requests do not wait for the hanging cache');
    assert.ok(errors.filter((e) => e === 'get').length >= 2);
    await store.close();
    assert.ok(errors.includes('put'), 'close() waited for the fill to time out');
  });

  it('ignores an in-progress copy in the cache: only completed records are trusted', async () => {
    const cacheStore = memoryStore({ sweepIntervalMs: 0 });
    const { store } = setup({ cache: cacheStore });
    const now = Date.now();
    await cacheStore.acquire({
      id: 'x',
      fingerprint: 'fp',
      token: 't',
      now,
      leaseUntil: now + 1,
      expiresAt: now + 9e6,
    });
    const result = await store.acquire({
      id: 'x',
      fingerprint: 'fp',
      token: 'u',
      now,
      leaseUntil: now + 1000,
      expiresAt: now + 9e6,
    });
    assert.equal(result.acquired, true, 'the durable store decided');
    await store.close();
  });

  it('lists and purges through the durable store only, which holds every record', async () => {
    const { store, oncely, cache, durable, reset } = setup();
    await firstExecution(oncely, store);
    reset();
    const now = Date.now();
    const page = await store.list!({ now, limit: 10 });
    assert.equal(page.records.length, 1);
    assert.equal(page.records[0]!.state, 'completed');
    assert.equal(await store.purgeExpired!({ now: page.records[0]!.expiresAt }), 1);
    assert.deepEqual(durable, { list: 1, purgeExpired: 1 });
    assert.deepEqual(cache, {}, 'its copies expire at the same instant on their own');
    await store.close();
  });

  it('has no list or purgeExpired when its durable store has none', async () => {
    const inner = memoryStore({ sweepIntervalMs: 0 });
    const { list: _list, purgeExpired: _purge, ...bare } = inner;
    const store = tieredStore({ cache: memoryStore({ sweepIntervalMs: 0 }), durable: bare });
    assert.equal(store.list, undefined);
    assert.equal(store.purgeExpired, undefined);
    await inner.close();
  });

  it('rejects unknown options and a cache without put', () => {
    const durable = memoryStore({ sweepIntervalMs: 0 });
    const cache = memoryStore({ sweepIntervalMs: 0 });
    for (const options of [
      { cache, durable, ttl: 1 },
      { cache: durable as unknown as RecordCache, durable: { name: 'x' } as Store },
      { cache: { name: 'c', get: cache.get } as unknown as RecordCache, durable },
      { cache, durable, cacheTimeoutMs: 0 },
    ]) {
      assert.throws(
        () => tieredStore(options as never),
        (error) => isOncelyError(error) && error.code === 'ERR_ONCELY_INVALID_OPTION',
      );
    }
    void durable.close();
    void cache.close();
  });
});
