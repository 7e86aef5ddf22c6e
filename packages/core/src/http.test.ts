import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OncelyError } from './errors.ts';
import {
  type HttpDecision,
  httpIdempotency,
  problemResponse,
  replayResponse,
  storableResponse,
} from './http.ts';
import { memoryStore } from './memory-store.ts';
import type { Store } from './store.ts';

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const post = (extra: Record<string, unknown> = {}) => ({
  method: 'POST',
  path: '/payments',
  query: '',
  keyHeader: 'k1',
  contentType: 'application/json',
  body: '{"amount":1}',
  ...extra,
});
function respond(decision: HttpDecision) {
  assert.equal(decision.kind, 'respond');
  assert.ok(decision.kind === 'respond');
  return decision;
}

describe('httpIdempotency', () => {
  it('passes through methods it does not cover, without reading the body', async () => {
    const http = httpIdempotency({ store: memoryStore() });
    let read = false;
    const decision = await http.handle(
      post({
        method: 'GET',
        body: () => {
          read = true;
          return '';
        },
      }),
    );
    assert.equal(decision.kind, 'pass');
    assert.equal(read, false);
    assert.equal(http.covers('patch'), true);
    assert.equal(http.covers('PUT'), false);
  });

  it('covers the configured methods only', async () => {
    const http = httpIdempotency({ store: memoryStore(), methods: ['put'] });
    assert.equal((await http.handle(post())).kind, 'pass');
    assert.equal((await http.handle(post({ method: 'PUT' }))).kind, 'execute');
  });

  it('passes a keyless request through unless the key is required', async () => {
    const http = httpIdempotency({ store: memoryStore() });
    assert.equal((await http.handle(post({ keyHeader: undefined }))).kind, 'pass');
    const missing = respond(await http.handle(post({ keyHeader: undefined }), { required: true }));
    assert.equal(missing.response.status, 400);
    assert.match(text(missing.response.body), /ERR_ONCELY_KEY_MISSING/);
    const strict = httpIdempotency({ store: memoryStore(), required: true });
    assert.equal(respond(await strict.handle(post({ keyHeader: undefined }))).response.status, 400);
    assert.equal((await strict.handle(post({ keyHeader: undefined }), { required: false })).kind, 'pass');
  });

  it('refuses invalid keys, and bare tokens in strict mode', async () => {
    const http = httpIdempotency({ store: memoryStore() });
    for (const keyHeader of ['', ['a', 'b'], 'caf\u00e9', '"open']) {
      const { response } = respond(await http.handle(post({ keyHeader })));
      assert.equal(response.status, 400);
      assert.match(text(response.body), /ERR_ONCELY_KEY_INVALID/);
    }
    const strict = httpIdempotency({ store: memoryStore(), strictHeader: true });
    assert.equal(respond(await strict.handle(post({ keyHeader: 'bare' }))).response.status, 400);
    assert.equal((await strict.handle(post({ keyHeader: '"quoted"' }))).kind, 'execute');
  });

  it('replays with Idempotent-Replayed and refuses a mismatch with 422', async () => {
    const http = httpIdempotency({ store: memoryStore() });
    const first = await http.handle(post({ body: () => new TextEncoder().encode('{"amount":1}') }));
    assert.ok(first.kind === 'execute');
    await first.commit({
      status: 201,
      headers: [
        ['Content-Type', 'application/json'],
        ['Set-Cookie', 'a=1'],
        ['Location', '/payments/1'],
      ],
      body: new TextEncoder().encode('{"id":1}'),
    });
    const replay = respond(await http.handle(post({ body: '{ "amount": 1 }' })));
    assert.equal(replay.replayed, true);
    assert.deepEqual(replay.response.headers, [
      ['content-type', 'application/json'],
      ['location', '/payments/1'],
      ['idempotent-replayed', 'true'],
    ]);
    const mismatch = respond(await http.handle(post({ body: '{"amount":2}' })));
    assert.equal(mismatch.replayed, false);
    assert.equal(mismatch.response.status, 422);
  });

  it('uses a custom fingerprint', async () => {
    const http = httpIdempotency({ store: memoryStore(), fingerprint: () => 'always-the-same' });
    const first = await http.handle(post());
    assert.ok(first.kind === 'execute');
    await first.commit({ status: 200, headers: [], body: new Uint8Array() });
    assert.equal(respond(await http.handle(post({ body: 'anything else', path: '/x' }))).replayed, true);
  });

  it('scopes keys by tenant', async () => {
    const http = httpIdempotency({ store: memoryStore() });
    const a = await http.handle(post({ scope: 'a' }));
    assert.ok(a.kind === 'execute');
    await a.commit({ status: 200, headers: [], body: new Uint8Array() });
    assert.equal((await http.handle(post({ scope: 'b' }))).kind, 'execute');
  });

  it('says a normal execution is recorded and not a takeover', async () => {
    const http = httpIdempotency({ store: memoryStore() });
    const decision = await http.handle(post());
    assert.ok(decision.kind === 'execute');
    assert.equal(decision.recorded, true);
    assert.equal(decision.takeover, false);
    await decision.abort();
  });

  it('says recorded: false when the store is down and failOpen lets the handler run', async () => {
    const inner = memoryStore();
    const down: Store = {
      name: inner.name,
      acquire: async () => {
        throw new Error('store down');
      },
      complete: inner.complete.bind(inner),
      extend: inner.extend.bind(inner),
      release: inner.release.bind(inner),
      get: inner.get.bind(inner),
      close: inner.close.bind(inner),
    };
    const open = await httpIdempotency({ store: down, failOpen: true }).handle(post());
    assert.ok(open.kind === 'execute');
    assert.equal(open.recorded, false);
    assert.equal(open.takeover, false);
    assert.equal(await open.commit({ status: 201, headers: [], body: new Uint8Array() }), 'unrecorded');
    const closed = respond(await httpIdempotency({ store: down }).handle(post()));
    assert.equal(closed.response.status, 503, 'without failOpen the store outage is a 503');
    await inner.close();
  });

  it('says takeover: true when the earlier owner let its lease lapse (injected clock)', async () => {
    let now = 1_000_000;
    const http = httpIdempotency({ store: memoryStore(), clock: () => now, leaseMs: 1000 });
    const first = await http.handle(post());
    assert.ok(first.kind === 'execute');
    assert.equal(first.takeover, false);
    now += 1001; // the first owner never renewed or finished: its lease has lapsed
    const second = await http.handle(post());
    assert.ok(second.kind === 'execute');
    assert.equal(second.takeover, true);
    assert.equal(second.recorded, true);
    assert.equal(await second.commit({ status: 201, headers: [], body: new Uint8Array() }), 'stored');
    assert.equal(await first.commit({ status: 201, headers: [], body: new Uint8Array() }), 'lease_lost');
  });

  it('rejects an unknown option at construction', () => {
    assert.throws(
      () => httpIdempotency({ store: memoryStore(), requried: true } as never),
      (e: unknown) => e instanceof OncelyError && e.code === 'ERR_ONCELY_INVALID_OPTION',
    );
    assert.throws(() => httpIdempotency({ store: memoryStore(), methods: [] }), OncelyError);
  });
});

describe('response helpers', () => {
  it('renders problem+json with Retry-After where the error carries one', () => {
    const busy = problemResponse(new OncelyError('ERR_ONCELY_IN_PROGRESS', 'busy', { retryAfter: 2 }));
    assert.equal(busy.status, 409);
    assert.deepEqual(busy.headers, [
      ['content-type', 'application/problem+json'],
      ['cache-control', 'no-store'],
      ['retry-after', '2'],
    ]);
    assert.equal(JSON.parse(text(busy.body)).code, 'ERR_ONCELY_IN_PROGRESS');
    const reused = problemResponse(new OncelyError('ERR_ONCELY_KEY_REUSED', 'reused'));
    assert.ok(!reused.headers.some(([name]) => name === 'retry-after'));
  });

  it('stores neither hop-by-hop headers nor Set-Cookie, Date or Content-Length', () => {
    const stored = storableResponse({
      status: 200,
      headers: [
        ['Connection', 'keep-alive, X-Hop'],
        ['X-Hop', 'named by Connection'],
        ['Keep-Alive', 'timeout=5'],
        ['Transfer-Encoding', 'chunked'],
        ['Date', 'Mon, 23 Nov 2026 10:00:00 GMT'],
        ['Set-Cookie', 'session=1'],
        ['Content-Length', '2'],
        ['ETag', '"v1"'],
        ['Link', '</a>'],
        ['Link', '</b>'],
      ],
      body: new TextEncoder().encode('ok'),
    });
    assert.deepEqual(stored.headers, [
      ['etag', '"v1"'],
      ['link', '</a>'],
      ['link', '</b>'],
    ]);
  });

  it('replays the stored status, headers and bytes plus Idempotent-Replayed', () => {
    const body = Uint8Array.from([0, 255]);
    assert.deepEqual(replayResponse({ status: 204, headers: [['etag', '"x"']], body }), {
      status: 204,
      headers: [
        ['etag', '"x"'],
        ['idempotent-replayed', 'true'],
      ],
      body,
    });
  });
});

describe('routeOptionsProblem', () => {
  it('accepts the route options adapters take from a route, and names what is wrong otherwise', async () => {
    const { routeOptionsProblem } = await import('./http.ts');
    assert.equal(routeOptionsProblem({}), undefined);
    assert.equal(routeOptionsProblem({ required: true, maxExecutionMs: 0 }), undefined);
    assert.equal(routeOptionsProblem({ required: 'yes' }), 'required must be a boolean');
    for (const bad of [-1, 1.5, '100', Number.POSITIVE_INFINITY]) {
      assert.equal(routeOptionsProblem({ maxExecutionMs: bad }), 'maxExecutionMs must be an integer >= 0');
    }
  });
});
