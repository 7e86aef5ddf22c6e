// `--store redis://…` with `--concurrency wait`: the store gets a subscriber connection of its own,
// so a waiter in one gateway hears of a completion in another at once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { createOncely } from '@oncely/core';
import { connectRedis, deleteRedisKeys, REDIS_URL } from '@oncely/test-stores';
import { openStore } from './store-from-url.ts';
import { parseStoreSpec } from './store-spec.ts';

it('opens a Redis store with a subscriber when asked, and a waiter in another engine replays at once', async () => {
  const prefix = `oncely-gw-notify-${randomBytes(4).toString('hex')}:`;
  const spec = parseStoreSpec(`${REDIS_URL}?prefix=${prefix}`);
  const owner = await openStore(spec);
  const waiter = await openStore(spec, { subscribe: true });
  try {
    assert.equal(typeof owner.store.watch, 'undefined', 'no second connection unless asked');
    assert.equal(typeof waiter.store.watch, 'function');
    const a = createOncely({ store: owner.store });
    const b = createOncely({
      store: waiter.store,
      concurrency: 'wait',
      waitPollMs: 3000,
      waitPollMaxMs: 3000,
    });
    const input = { key: 'k', fingerprint: 'f' };
    const first = await a.begin(input);
    assert.equal(first.kind, 'execute');
    const waiting = b.begin(input);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const completed = Date.now();
    if (first.kind === 'execute') await first.commit({ status: 201, headers: [], body: new Uint8Array([1]) });
    assert.equal((await waiting).kind, 'replay');
    assert.ok(Date.now() - completed < 1000, 'not at the next poll, 3 s away');
  } finally {
    await waiter.close();
    await owner.close();
    const admin = await connectRedis();
    await deleteRedisKeys(admin, prefix);
    admin.disconnect();
  }
});
