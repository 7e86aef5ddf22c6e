import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeHttpBehaviour } from '@oncely/conformance';
import { isOncelyError, memoryStore, recordId, type Store } from '@oncely/core';
import { testStores } from '@oncely/test-stores';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { stream } from 'hono/streaming';
import { type IdempotencyVariables, idempotency } from './index.ts';
import { startHonoTestServer } from './test-app.ts';

// The same suite on every store, over real HTTP: memory, SQLite, and the real Redis and PostgreSQL.
for (const kind of testStores()) {
  describeHttpBehaviour({ ...kind, name: `hono + ${kind.name}`, start: startHonoTestServer });
}

/** A memory store that counts how often each outcome reached it. */
function countingStore(): Store & { calls: { complete: number; release: number } } {
  const inner = memoryStore({ sweepIntervalMs: 0 });
  const calls = { complete: 0, release: 0 };
  return {
    ...inner,
    name: 'counting',
    calls,
    acquire: (input) => inner.acquire(input),
    extend: (input) => inner.extend(input),
    get: (input) => inner.get(input),
    close: () => inner.close(),
    complete: (input) => {
      calls.complete++;
      return inner.complete(input);
    },
    release: (input) => {
      calls.release++;
      return inner.release(input);
    },
  };
}

const post = (
  app: { request(path: string, init: RequestInit): Response | Promise<Response> },
  path: string,
  key: string | null,
  body: string | Uint8Array | null = '{"amount":1}',
  type = 'application/json',
): Promise<Response> => {
  const headers: Record<string, string> = { 'content-type': type };
  if (key !== null) headers['idempotency-key'] = key;
  return Promise.resolve(app.request(path, { method: 'POST', headers, body }));
};

describe('@oncely/hono', () => {
  it('works without a server through app.request(): first run, replay, problem', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    let runs = 0;
    const app = new Hono();
    app.post('/orders', idempotency({ store }), (c) =>
      c.json({ n: ++runs }, 201, { Location: `/orders/${runs}` }),
    );
    const first = await post(app, '/orders', 'k1');
    assert.equal(first.status, 201);
    assert.deepEqual(await first.json(), { n: 1 });
    const again = await post(app, '/orders', 'k1');
    assert.equal(again.status, 201);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.headers.get('location'), '/orders/1');
    assert.deepEqual(await again.json(), { n: 1 });
    const reused = await post(app, '/orders', 'k1', '{"amount":2}');
    assert.equal(reused.status, 422);
    assert.equal(reused.headers.get('content-type'), 'application/problem+json');
    assert.equal(((await reused.json()) as { code: string }).code, 'ERR_ONCELY_KEY_REUSED');
    assert.equal(runs, 1);
    await store.close();
  });

  it('leaves the body readable for the handler: c.req.json(), c.req.raw and after another reader', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const app = new Hono();
    app.post('/json', idempotency({ store }), async (c) => c.json(await c.req.json()));
    app.post('/raw', idempotency({ store }), async (c) => c.json(await c.req.raw.json()));
    // A validator-like middleware that reads the body first, through Hono's body cache.
    app.post(
      '/validated',
      async (c, next) => {
        await c.req.json();
        await next();
      },
      idempotency({ store }),
      async (c) => c.json(await c.req.json()),
    );
    for (const path of ['/json', '/raw', '/validated']) {
      const first = await post(app, path, `key${path}`, '{"amount":7}');
      assert.deepEqual(await first.json(), { amount: 7 }, path);
      const changed = await post(app, path, `key${path}`, '{"amount":8}');
      assert.equal(changed.status, 422, `${path}: the fingerprint saw the body`);
    }
    await store.close();
  });

  it('stores and replays a response written with the stream() helper', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    let runs = 0;
    const app = new Hono();
    app.post('/stream', idempotency({ store }), (c) => {
      runs++;
      c.header('Content-Type', 'text/plain');
      return stream(c, async (s) => {
        for (const part of ['a', 'b', 'c']) {
          await s.sleep(5);
          await s.write(part);
        }
      });
    });
    const first = await post(app, '/stream', 'k');
    assert.equal(await first.text(), 'abc');
    const again = await post(app, '/stream', 'k');
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.headers.get('content-type'), 'text/plain');
    assert.equal(await again.text(), 'abc');
    assert.equal(runs, 1);
    await store.close();
  });

  it('gives the handler the signal and the parsed key only for recorded requests', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const app = new Hono<{ Variables: IdempotencyVariables }>();
    app.post('/x', idempotency({ store }), (c) => {
      const context = c.get('idempotency');
      return c.json({
        recorded: context?.signal instanceof AbortSignal,
        aborted: context?.signal.aborted ?? null,
        key: context?.key ?? null,
        keyHash: context?.keyHash ?? null,
      });
    });
    assert.deepEqual(await (await post(app, '/x', '"k"')).json(), {
      recorded: true,
      aborted: false,
      key: 'k',
      keyHash: recordId('', 'k'),
    });
    assert.deepEqual(await (await post(app, '/x', null)).json(), {
      recorded: false,
      aborted: null,
      key: null,
      keyHash: null,
    });
    await store.close();
  });

  it('commits or aborts exactly once per recorded request', async () => {
    const store = countingStore();
    const app = new Hono();
    app.onError((error, c) =>
      error instanceof HTTPException ? error.getResponse() : c.text(error.message, 500),
    );
    const idem = idempotency({ store });
    app.post('/ok', idem, (c) => c.text('ok', 201));
    app.post('/fail', idem, () => {
      throw new Error('boom');
    });
    app.post('/http-exception', idem, () => {
      throw new HTTPException(409, { message: 'conflict' });
    });
    app.post('/nothing', idem, (() => undefined) as unknown as () => Response);

    assert.equal((await post(app, '/ok', 'ok')).status, 201);
    assert.deepEqual(store.calls, { complete: 1, release: 0 });
    assert.equal((await post(app, '/fail', 'fail')).status, 500);
    assert.deepEqual(store.calls, { complete: 1, release: 1 });
    assert.equal((await post(app, '/http-exception', 'http')).status, 409);
    assert.deepEqual(store.calls, { complete: 1, release: 2 }, 'a thrown HTTPException frees the key');
    // Hono reports a handler that returns no Response; the middleware must not hide that.
    const nothing = await post(app, '/nothing', 'nothing');
    assert.equal(nothing.status, 500);
    assert.match(await nothing.text(), /Context is not finalized/);
    assert.deepEqual(store.calls, { complete: 1, release: 3 });
    await store.close();
  });

  it('releases the key when the handler throws, also under a sub-app with its own onError', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    let runs = 0;
    const api = new Hono();
    api.onError((error, c) => c.json({ error: error.message }, 502));
    api.post('/charge', idempotency({ store }), () => {
      runs++;
      throw new Error('provider down');
    });
    const app = new Hono().route('/api', api);
    const first = await post(app, '/api/charge', 'k');
    assert.equal(first.status, 502);
    assert.deepEqual(await first.json(), { error: 'provider down' });
    const retry = await post(app, '/api/charge', 'k');
    assert.equal(retry.status, 502);
    assert.equal(retry.headers.get('idempotent-replayed'), null);
    assert.equal(runs, 2, 'the retry ran again');
    await store.close();
  });

  it('frees the key and rethrows when the handler throws something that is not an Error', async () => {
    const store = countingStore();
    const app = new Hono();
    app.post('/x', idempotency({ store }), () => {
      throw 'not an error';
    });
    await assert.rejects(
      async () => post(app, '/x', 'k'),
      (thrown) => thrown === 'not an error',
    );
    assert.deepEqual(store.calls, { complete: 0, release: 1 });
    await store.close();
  });

  it('replays repeated response headers, never Set-Cookie', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const app = new Hono();
    app.post('/x', idempotency({ store }), (c) => {
      c.header('Link', '</a>; rel="a"', { append: true });
      c.header('Link', '</b>; rel="b"', { append: true });
      c.header('Set-Cookie', 'a=1', { append: true });
      c.header('Set-Cookie', 'b=2', { append: true });
      return c.text('ok', 201);
    });
    const first = await post(app, '/x', 'k');
    assert.deepEqual(first.headers.getSetCookie(), ['a=1', 'b=2'], 'the first client gets every cookie');
    const again = await post(app, '/x', 'k');
    assert.equal(again.headers.get('link'), first.headers.get('link'));
    assert.deepEqual(again.headers.getSetCookie(), []);
    await store.close();
  });

  it('replays an empty 204 and a 200 with an empty body', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const app = new Hono();
    app.post('/none', idempotency({ store }), (c) => c.body(null, 204));
    app.post('/blank', idempotency({ store }), (c) => c.text(''));
    for (const [path, status] of [
      ['/none', 204],
      ['/blank', 200],
    ] as const) {
      await post(app, path, path);
      const again = await post(app, path, path);
      assert.equal(again.status, status);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.equal(await again.text(), '');
    }
    await store.close();
  });

  it('hands a completion the store could not take yet to executionCtx.waitUntil (Workers)', async () => {
    const inner = memoryStore({ sweepIntervalMs: 0 });
    let failures = 1;
    const store: Store = {
      ...inner,
      acquire: (input) => inner.acquire(input),
      extend: (input) => inner.extend(input),
      release: (input) => inner.release(input),
      get: (input) => inner.get(input),
      close: () => inner.close(),
      complete: async (input) => {
        if (failures-- > 0) throw new Error('store hiccup');
        return inner.complete(input);
      },
    };
    let runs = 0;
    const app = new Hono();
    app.post('/x', idempotency({ store, leaseMs: 300 }), (c) => c.json({ n: ++runs }, 201));
    const waiting: Array<Promise<unknown>> = [];
    const executionCtx = {
      waitUntil: (promise: Promise<unknown>) => void waiting.push(promise),
      passThroughOnException: () => {},
      props: {},
    };
    const init = { method: 'POST', headers: { 'idempotency-key': 'k' }, body: '{}' };
    const first = await app.request('/x', init, {}, executionCtx);
    assert.equal(first.status, 201, 'the client still gets its response');
    assert.equal(waiting.length, 1, 'the background completion was handed to waitUntil');
    await Promise.all(waiting);
    const again = await app.request('/x', init, {}, executionCtx);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(runs, 1);
    await store.close();
  });

  it('rejects unknown options and a scope that is not a function at construction', () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    assert.throws(
      () => idempotency({ store, requried: true } as never),
      (error) => isOncelyError(error) && error.code === 'ERR_ONCELY_INVALID_OPTION',
    );
    assert.throws(
      () => idempotency({ store, scope: 'tenant' as never }),
      (error) => isOncelyError(error) && error.code === 'ERR_ONCELY_INVALID_OPTION',
    );
  });
});
