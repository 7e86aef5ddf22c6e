// Waiters across processes: with a subscriber connection, a request waiting for a duplicate hears of
// the completion at once through Redis pub/sub, instead of at its next poll (seconds apart here).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createOncely, type StoredResponse } from '@oncely/core';
import { redisStore } from './redis-store.ts';
import { connectIoredis, connectNodeRedis, deleteKeys } from './test-redis.ts';

const response: StoredResponse = { status: 201, headers: [], body: new TextEncoder().encode('{"ok":true}') };

describe('Redis store: waiters hear of a completion through pub/sub', () => {
  const closers: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  const clients = [
    [
      'ioredis',
      async () => {
        const client = await connectIoredis();
        const subscriber = client.duplicate();
        closers.push(
          () => subscriber.disconnect(),
          () => client.disconnect(),
        );
        return { client, subscriber };
      },
    ],
    [
      'node-redis',
      async () => {
        const client = await connectNodeRedis();
        const subscriber = client.duplicate();
        await subscriber.connect();
        closers.push(
          () => void subscriber.close(),
          () => void client.close(),
        );
        return { client, subscriber };
      },
    ],
  ] as const;

  for (const [name, connect] of clients) {
    it(`${name}: a waiter in another engine replays within milliseconds of the completion, not at its next poll`, async () => {
      const { client, subscriber } = await connect();
      const prefix = `oncely-notify-${randomBytes(4).toString('hex')}:`;
      closers.push(async () => {
        const admin = await connectIoredis();
        await deleteKeys(admin, prefix);
        admin.disconnect();
      });
      // Two engines, as two processes would have them: the owner, and a waiter polling only every 3 s.
      const owner = createOncely({ store: redisStore({ client, prefix }) });
      const waiting = createOncely({
        store: redisStore({ client, prefix, subscriber }),
        concurrency: 'wait',
        maxWaitMs: 10_000,
        waitPollMs: 3000,
        waitPollMaxMs: 3000,
      });
      const input = { key: 'k1', fingerprint: 'fp' };
      const first = await owner.begin(input);
      assert.equal(first.kind, 'execute');
      const waited = waiting.begin(input);
      await sleep(300); // the waiter found the key taken and subscribed
      const completed = Date.now();
      if (first.kind === 'execute') assert.equal(await first.commit(response), 'stored');
      const decision = await waited;
      const took = Date.now() - completed;
      assert.equal(decision.kind, 'replay');
      assert.ok(took < 1000, `replayed ${took} ms after the completion (its next poll was 3 s away)`);
    });
  }

  it('wakes a waiter when the owner releases the key, so it runs itself at once', async () => {
    const client = await connectIoredis();
    const subscriber = client.duplicate();
    closers.push(
      () => subscriber.disconnect(),
      () => client.disconnect(),
    );
    const prefix = `oncely-notify-${randomBytes(4).toString('hex')}:`;
    closers.push(() => deleteKeys(client, prefix));
    const owner = createOncely({ store: redisStore({ client, prefix }) });
    const waiting = createOncely({
      store: redisStore({ client, prefix, subscriber }),
      concurrency: 'wait',
      maxWaitMs: 10_000,
      waitPollMs: 3000,
      waitPollMaxMs: 3000,
    });
    const input = { key: 'k2', fingerprint: 'fp' };
    const first = await owner.begin(input);
    const waited = waiting.begin(input);
    await sleep(300);
    const released = Date.now();
    if (first.kind === 'execute') await first.abort(new Error('upstream 503'));
    const decision = await waited;
    assert.equal(decision.kind, 'execute', 'the waiter took the freed key');
    assert.ok(Date.now() - released < 1000);
    if (decision.kind === 'execute') await decision.abort();
  });

  it('leaves no listener behind when subscribing fails (a NOPERM on the channel)', async () => {
    const listeners = new Set<unknown>();
    const failing = {
      status: 'ready',
      subscribe: async () => {
        throw new Error("NOPERM this user has no permissions to access the 'oncely:done' channel");
      },
      unsubscribe: async () => {},
      on: (_event: string, listener: unknown) => listeners.add(listener),
      off: (_event: string, listener: unknown) => listeners.delete(listener),
    };
    const store = redisStore({ client: { send: async () => null }, subscriber: failing });
    for (let i = 0; i < 30; i++) {
      const stop = store.watch?.({ id: `id${i}` }, () => {});
      await sleep(1);
      stop?.();
    }
    assert.equal(listeners.size, 0);
  });

  it('refuses a subscriber that is not a Redis client', () => {
    assert.throws(() => redisStore({ client: { send: async () => null }, subscriber: 42 }), /subscriber/);
  });
});
