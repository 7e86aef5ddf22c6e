// @oncely/nestjs beyond the HTTP behaviour suite, on both platforms: what a handler can return or
// throw, Nest's exception filters, @Idempotent() on controllers and routes, the scope from a guard,
// the store from a provider through forRootAsync, and the module imported more than once.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isOncelyError, memoryStore, type OncelyEvent, recordId, type Store } from '@oncely/core';
import { connectRedis, deleteRedisKeys, unique } from '@oncely/test-stores';
import { Idempotent, NESTJS_DEFAULTS, OncelyModule, type OncelyModuleOptions } from './index.ts';
import { buildTestApps } from './test-build.ts';

type Platform = 'express' | 'fastify';
interface Counts {
  exceptions: unknown[];
  of(name: string): number;
}
interface Running {
  counts: Counts;
  url: string;
  app: { get<T>(token: unknown, options: { strict: false }): T };
  close: () => Promise<void>;
}
interface Features {
  startFeatures(
    platform: Platform,
    options: OncelyModuleOptions,
    settings?: { rawBody?: boolean },
  ): Promise<Running>;
  startWithRedisProvider(
    platform: Platform,
    prefix: string,
  ): Promise<Running & { redis: { quit(): Promise<unknown> } }>;
  startImportedTwice(platform: Platform, options: OncelyModuleOptions): Promise<Running>;
  startConfiguredTwice(platform: Platform, options: OncelyModuleOptions): Promise<unknown>;
  startWithBadRoute(platform: Platform, options: OncelyModuleOptions): Promise<unknown>;
  interceptorsOf(app: Running['app']): number;
}

const build = await buildTestApps();
after(() => build.remove());
const features = await build.load<Features>('features-app');

interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
  json: () => Record<string, unknown>;
}

async function send(
  url: string,
  path: string,
  init: { key?: string | null; body?: string; method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...init.headers };
  if (init.key != null) headers['idempotency-key'] = init.key;
  const response = await fetch(new URL(path, url), {
    method: init.method ?? 'POST',
    headers,
    body: init.body ?? '{"amount":100}',
  });
  const body = Buffer.from(await response.arrayBuffer());
  const text = body.toString();
  return { status: response.status, headers: response.headers, body, text, json: () => JSON.parse(text) };
}

const replayed = (reply: Reply): boolean => reply.headers.get('idempotent-replayed') === 'true';

/** `store` with `complete` delayed: a response sent before its commit landed lets a retry see 409. */
function slowComplete(store: Store, ms: number): Store {
  return {
    name: store.name,
    acquire: (input) => store.acquire(input),
    complete: async (input) => {
      await sleep(ms);
      return store.complete(input);
    },
    extend: (input) => store.extend(input),
    release: (input) => store.release(input),
    get: (input) => store.get(input),
    close: () => store.close(),
  };
}

for (const platform of ['express', 'fastify'] as const) {
  describe(`@oncely/nestjs on ${platform}`, () => {
    const running: Array<() => Promise<void>> = [];
    after(async () => {
      for (const close of running.splice(0)) await close();
    });
    async function start(options: Partial<OncelyModuleOptions> = {}, settings: { rawBody?: boolean } = {}) {
      const store = memoryStore({ sweepIntervalMs: 0 });
      const app = await features.startFeatures(platform, { store, ...options }, settings);
      running.push(async () => {
        await app.close();
        await store.close();
      });
      return { ...app, store };
    }

    it('replays a response the handler wrote itself through @Res(), status, headers and bytes', async () => {
      const { url, counts } = await start();
      const first = await send(url, '/f/by-hand', { key: 'k1' });
      assert.deepEqual([first.status, first.text, first.headers.get('x-by-hand')], [201, 'made 1', 'n1']);
      const again = await send(url, '/f/by-hand', { key: 'k1' });
      assert.ok(replayed(again));
      assert.deepEqual([again.status, again.text, again.headers.get('x-by-hand')], [201, 'made 1', 'n1']);
      assert.equal(again.headers.get('content-type'), first.headers.get('content-type'));
      assert.equal(counts.of('by-hand'), 1);
    });

    it('replays a StreamableFile with its type, disposition and length, committed before its last byte goes out', async () => {
      const store = slowComplete(memoryStore({ sweepIntervalMs: 0 }), 50);
      const app = await features.startFeatures(platform, { store });
      running.push(async () => {
        await app.close();
        await store.close();
      });
      for (let i = 1; i <= 10; i++) {
        const first = await send(app.url, '/f/file', { key: `file-${i}` });
        assert.equal(first.text, `%PDF-1.7 receipt ${i}`);
        // Sent with Content-Length, the client has the whole body before the platform calls end().
        const again = await send(app.url, '/f/file', { key: `file-${i}` });
        assert.ok(replayed(again), `retry ${i} replayed: ${again.status} ${again.text}`);
        assert.deepEqual(again.body, first.body);
        for (const name of ['content-type', 'content-disposition', 'content-length']) {
          assert.equal(again.headers.get(name), first.headers.get(name), name);
        }
      }
      assert.equal(app.counts.of('file'), 10);
    });

    it('keeps a header set before the handler (@Header) once in a replay, next to the stored ones', async () => {
      const { url } = await start();
      const first = await send(url, '/f/versioned', { key: 'k1' });
      assert.equal(first.headers.get('x-api-version'), '2');
      const again = await send(url, '/f/versioned', { key: 'k1' });
      assert.ok(replayed(again));
      assert.equal(again.headers.get('x-api-version'), '2', 'once, not "2, 2"');
      assert.equal(again.text, first.text);
    });

    it('releases the key of a thrown HttpException, even under stripe, and Nest’s filters answer', async () => {
      const events: OncelyEvent[] = [];
      const { url, counts } = await start({ cache: 'stripe', onEvent: (event) => events.push(event) });
      const first = await send(url, '/f/not-found', { key: 'k1' });
      assert.equal(first.status, 404);
      assert.deepEqual(first.json(), { message: 'no such account', error: 'Not Found', statusCode: 404 });
      const again = await send(url, '/f/not-found', { key: 'k1' });
      assert.equal(again.status, 404);
      assert.ok(!replayed(again), 'a thrown exception is no outcome to keep');
      assert.equal(counts.of('not-found'), 2);
      assert.equal(counts.exceptions.length, 2, 'the app’s global filter saw both');
      assert.equal(events.filter((event) => event.type === 'released').length, 2);
    });

    it('releases the key of an error a filter of the app’s own answers', async () => {
      const { url, counts } = await start({ cache: 'stripe' });
      const first = await send(url, '/f/declined', { key: 'k1' });
      assert.deepEqual([first.status, first.json()], [402, { declined: 'card declined 1' }]);
      const again = await send(url, '/f/declined', { key: 'k1' });
      assert.deepEqual([again.status, again.json()], [402, { declined: 'card declined 2' }]);
      assert.equal(counts.of('declined'), 2);
    });

    it('releases the key when a pipe refuses the body: the corrected retry with the same key runs', async () => {
      const { url, counts } = await start();
      const refused = await send(url, '/f/validated', { key: 'k1', body: '{"amount":"100"}' });
      assert.equal(refused.status, 400);
      const fixed = await send(url, '/f/validated', { key: 'k1', body: '{"amount":100}' });
      assert.deepEqual([fixed.status, fixed.json()], [201, { n: 1, amount: 100 }]);
      assert.ok(replayed(await send(url, '/f/validated', { key: 'k1', body: '{"amount":100}' })));
      assert.equal(counts.of('validated'), 1);
    });

    it('takes @Idempotent() from the controller, with a route’s own over it', async () => {
      const { url, counts } = await start();
      const missing = await send(url, '/strict/a');
      assert.equal(missing.status, 400);
      assert.equal(missing.json().code, 'ERR_ONCELY_KEY_MISSING');
      assert.equal((await send(url, '/strict/b')).status, 201, 'b overrides required');
      assert.equal((await send(url, '/strict/a', { key: 'k1' })).status, 201);
      assert.ok(replayed(await send(url, '/strict/a', { key: 'k1' })));
      assert.deepEqual([counts.of('strict-a'), counts.of('strict-b')], [1, 1]);
    });

    it('@Idempotent(false) turns a route off; per-route cache policy and methods', async () => {
      const { url, counts } = await start();
      await send(url, '/f/off', { key: 'k1' });
      assert.ok(!replayed(await send(url, '/f/off', { key: 'k1' })));
      assert.equal(counts.of('off'), 2);
      // final-errors keeps a 404 on this route; the module default (success-only) would not.
      assert.equal((await send(url, '/f/final', { key: 'k2' })).status, 404);
      const kept = await send(url, '/f/final', { key: 'k2' });
      assert.ok(replayed(kept));
      assert.equal(kept.status, 404);
      assert.equal(counts.of('final'), 1);
      // PUT is recorded on the route that names it.
      await send(url, '/f/put', { key: 'k3', method: 'PUT' });
      assert.ok(replayed(await send(url, '/f/put', { key: 'k3', method: 'PUT' })));
      assert.equal(counts.of('put'), 1);
    });

    it("with routes: 'decorated', records only the routes that carry @Idempotent()", async () => {
      const { url, counts } = await start({ routes: 'decorated' });
      await send(url, '/f/versioned', { key: 'k1' });
      assert.ok(!replayed(await send(url, '/f/versioned', { key: 'k1' })), 'not decorated');
      assert.equal(counts.of('versioned'), 2);
      await send(url, '/strict/a', { key: 'k2' });
      assert.ok(replayed(await send(url, '/strict/a', { key: 'k2' })), 'decorated on its controller');
    });

    it('takes the scope from what the guard set on the request: one key, two accounts, two runs', async () => {
      const { url, counts, store } = await start({ requireScope: true });
      const as = (account: string) => ({ authorization: `Bearer ${account}` });
      const a = await send(url, '/accounts/transfers', { key: 'k1', headers: as('acct_a') });
      const b = await send(url, '/accounts/transfers', { key: 'k1', headers: as('acct_b') });
      assert.deepEqual(
        [a.json(), b.json()],
        [
          { n: 1, account: 'acct_a' },
          { n: 2, account: 'acct_b' },
        ],
      );
      const againA = await send(url, '/accounts/transfers', { key: 'k1', headers: as('acct_a') });
      assert.ok(replayed(againA));
      assert.deepEqual(againA.json(), a.json());
      assert.ok(await store.get({ id: recordId('acct_a', 'k1'), now: Date.now() }), 'recorded under acct_a');
      // The guard refuses first: nothing is recorded, nothing runs.
      assert.equal((await send(url, '/accounts/transfers', { key: 'k1' })).status, 401);
      assert.equal(counts.of('transfer'), 2);
      // A route's own scope.
      const sub = { ...as('acct_a'), 'x-sub-account': 'sub_1' };
      await send(url, '/accounts/sub-transfers', { key: 'k2', headers: sub });
      assert.ok(replayed(await send(url, '/accounts/sub-transfers', { key: 'k2', headers: sub })));
      const other = await send(url, '/accounts/sub-transfers', {
        key: 'k2',
        headers: { ...sub, 'x-sub-account': 'sub_2' },
      });
      assert.ok(!replayed(other));
      assert.ok(await store.get({ id: recordId('acct_a/sub_1', 'k2'), now: Date.now() }));
    });

    it('fingerprints a body no parser of the app kept the bytes of, and leaves it to the handler', async () => {
      const { url, counts } = await start({ maxBodyBytes: 64 });
      const text = (body: string, key = 'k1') =>
        send(url, '/f/text', { key, body, headers: { 'content-type': 'text/plain' } });
      const first = await text('order 1');
      assert.equal(first.text, 'got order 1');
      const again = await text('order 1');
      assert.ok(replayed(again));
      assert.equal(again.text, 'got order 1');
      assert.equal((await text('order 2')).status, 422);
      assert.equal(counts.of('text'), 1);
      if (platform === 'express') {
        // Read by the module itself (Fastify's own parser and bodyLimit read it there).
        assert.equal((await text('x'.repeat(65), 'k2')).status, 413);
        assert.equal(counts.of('text'), 1);
      }
    });

    it('gives the handler the parsed key and the signal through idempotencyOf(request)', async () => {
      const { url } = await start();
      assert.deepEqual((await send(url, '/f/signal', { key: '"k1"' })).json(), {
        n: 1,
        key: 'k1',
        aborted: false,
      });
      assert.deepEqual((await send(url, '/f/signal')).json(), { n: 2, key: null, aborted: null });
    });

    it('without rawBody: true, refuses to fingerprint a parsed body (500, nothing runs); keyless requests pass', async () => {
      const { url, counts } = await start({}, { rawBody: false });
      assert.equal((await send(url, '/f/versioned', { key: 'k1' })).status, 500);
      assert.equal(counts.of('versioned'), 0);
      const error = counts.exceptions[0];
      assert.ok(isOncelyError(error) && error.code === 'ERR_ONCELY_INVALID_OPTION');
      assert.match(error.message, /rawBody: true/);
      assert.equal((await send(url, '/f/versioned')).status, 201);
    });

    it('takes the store from a provider through forRootAsync (a Redis client of the app): 50 duplicates, one run', async () => {
      const prefix = `oncely-test:${unique()}:nest:`;
      const app = await features.startWithRedisProvider(platform, prefix);
      running.push(async () => {
        await app.close();
        const redis = await connectRedis();
        await deleteRedisKeys(redis, prefix);
        redis.disconnect();
        await app.redis.quit();
      });
      const replies = await Promise.all(
        Array.from({ length: 50 }, () => send(app.url, '/di/charge', { key: 'k1' })),
      );
      assert.equal(app.counts.of('charge'), 1, 'exactly one execution');
      assert.equal(replies.filter((reply) => reply.status === 201).length, 1);
      assert.equal(replies.filter((reply) => reply.status === 409).length, 49);
      const later = await send(app.url, '/di/charge', { key: 'k1' });
      assert.ok(replayed(later));
      assert.deepEqual(later.json(), { n: 1, key: 'k1' });
    });

    it('registers one interceptor when one forRoot() module is imported by two modules (and the plain class too)', async () => {
      const store = memoryStore({ sweepIntervalMs: 0 });
      const app = await features.startImportedTwice(platform, { store });
      running.push(async () => {
        await app.close();
        await store.close();
      });
      assert.equal(features.interceptorsOf(app.app), 1);
      await send(app.url, '/di/charge', { key: 'k1' });
      assert.ok(replayed(await send(app.url, '/di/charge', { key: 'k1' })));
      assert.equal(app.counts.of('charge'), 1);
    });

    it('refuses at start-up two forRoot() modules with options of their own, and an @Idempotent() the engine refuses', async () => {
      const store = memoryStore({ sweepIntervalMs: 0 });
      await assert.rejects(features.startConfiguredTwice(platform, { store }), {
        code: 'ERR_ONCELY_INVALID_OPTION',
        message: /imported 2 times/,
      });
      await assert.rejects(features.startWithBadRoute(platform, { store }), {
        code: 'ERR_ONCELY_INVALID_OPTION',
        message: /ttlMs/,
      });
      await store.close();
    });
  });
}

describe('@oncely/nestjs options', () => {
  it('rejects invalid options where they are written', () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const invalid = { code: 'ERR_ONCELY_INVALID_OPTION' };
    assert.throws(() => OncelyModule.forRoot(null as never), invalid);
    assert.throws(() => OncelyModule.forRoot({ store, scope: 'x-tenant' } as never), invalid);
    assert.throws(() => OncelyModule.forRoot({ store, routes: 'some' } as never), invalid);
    assert.throws(() => OncelyModule.forRoot({ store, maxBodyBytes: -1 }), invalid);
    assert.throws(() => OncelyModule.forRootAsync({} as never), invalid);
    assert.throws(() => Idempotent({ ttl: 5 } as never), invalid);
    assert.throws(() => Idempotent({ required: 'yes' } as never), invalid);
    assert.throws(() => Idempotent('on' as never), invalid);
    assert.deepEqual(NESTJS_DEFAULTS, { routes: 'all', maxBodyBytes: 1024 * 1024 });
  });
});
