// The gateway's own endpoints (/healthz, /metrics) and its log lines.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { memoryStore, recordId, type Store, type StoreHealth } from '@oncely/core';
import { post, send } from './test-client.ts';
import { type InProcessGateway, startGateway } from './test-gateway.ts';

const running: InProcessGateway[] = [];
after(async () => {
  for (const g of running.splice(0)) await g.close();
});

async function gateway(options: Parameters<typeof startGateway>[0]): Promise<InProcessGateway> {
  const g = await startGateway(options);
  running.push(g);
  return g;
}

/** A memory store whose `get` fails or never answers, for the health check. */
function brokenGet(mode: 'throws' | 'hangs'): Store {
  const inner = memoryStore({ sweepIntervalMs: 0 });
  return {
    name: 'broken',
    acquire: (input) => inner.acquire(input),
    complete: (input) => inner.complete(input),
    extend: (input) => inner.extend(input),
    release: (input) => inner.release(input),
    get: () => (mode === 'throws' ? Promise.reject(new Error('connection refused')) : new Promise(() => {})),
    close: () => inner.close(),
  };
}

/** A memory store with a `health()` answering `health` (or failing with it). */
function withHealth(health: StoreHealth | Error): Store {
  const inner = memoryStore({ sweepIntervalMs: 0 });
  return {
    name: 'probed',
    acquire: (input) => inner.acquire(input),
    complete: (input) => inner.complete(input),
    extend: (input) => inner.extend(input),
    release: (input) => inner.release(input),
    get: (input) => inner.get(input),
    close: () => inner.close(),
    health: () => (health instanceof Error ? Promise.reject(health) : Promise.resolve(health)),
  };
}

/** The value of one sample line of the exposition, e.g. `oncely_gateway_requests_total{outcome="executed"}`. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `metrics have ${series}`);
  return Number(line.slice(series.length + 1));
}

describe('gateway admin endpoints and logs', () => {
  it('answers /healthz 200 when the store answers, 503 when it fails or hangs', {
    timeout: 20_000,
  }, async () => {
    const ok = await gateway({ store: memoryStore({ sweepIntervalMs: 0 }) });
    const healthy = await send(ok.url, '/_oncely/healthz', { method: 'GET' });
    assert.equal(healthy.status, 200);
    assert.deepEqual(healthy.json(), { status: 'ok', store: 'memory' });

    const failing = await gateway({ store: brokenGet('throws') });
    const down = await send(failing.url, '/_oncely/healthz', { method: 'GET' });
    assert.equal(down.status, 503);
    assert.deepEqual(down.json(), { status: 'unavailable', store: 'broken', error: 'connection refused' });

    const hanging = await gateway({ store: brokenGet('hangs'), healthTimeoutMs: 100 });
    const slow = await send(hanging.url, '/_oncely/healthz', { method: 'GET' });
    assert.equal(slow.status, 503);
    assert.match(String(slow.json().error), /no answer within 100 ms/);
    assert.equal(ok.upstream.received.length + failing.upstream.received.length, 0, 'never proxied');
  });

  it('answers /livez without asking the store, and /readyz like /healthz', { timeout: 20_000 }, async () => {
    // A store that is down must not make an orchestrator restart the gateway: liveness stays 200.
    const failing = await gateway({ store: brokenGet('throws') });
    const live = await send(failing.url, '/_oncely/livez', { method: 'GET' });
    assert.equal(live.status, 200);
    assert.deepEqual(live.json(), { status: 'ok' });
    const ready = await send(failing.url, '/_oncely/readyz', { method: 'GET' });
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.json(), { status: 'unavailable', store: 'broken', error: 'connection refused' });
    const ok = await gateway({ store: memoryStore({ sweepIntervalMs: 0 }) });
    assert.equal((await send(ok.url, '/_oncely/readyz', { method: 'GET' })).status, 200);
    assert.equal(failing.upstream.received.length, 0, 'never proxied');
  });

  it('asks a store with health() whether it can write: 503 degraded when it cannot', {
    timeout: 20_000,
  }, async () => {
    const writable = await gateway({ store: withHealth({ writable: true }) });
    const ok = await send(writable.url, '/_oncely/healthz', { method: 'GET' });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json(), { status: 'ok', store: 'probed' });

    const locked = await gateway({ store: withHealth({ writable: false, detail: 'the file is locked' }) });
    const degraded = await send(locked.url, '/_oncely/healthz', { method: 'GET' });
    assert.equal(degraded.status, 503);
    assert.equal(degraded.header('cache-control'), 'no-store');
    assert.deepEqual(degraded.json(), { status: 'degraded', store: 'probed', detail: 'the file is locked' });

    const silent = await gateway({ store: withHealth({ writable: false }) });
    assert.deepEqual((await send(silent.url, '/_oncely/healthz', { method: 'GET' })).json(), {
      status: 'degraded',
      store: 'probed',
      detail: 'the store cannot take writes',
    });

    const failing = await gateway({ store: withHealth(new Error('disk I/O error')) });
    const down = await send(failing.url, '/_oncely/healthz', { method: 'GET' });
    assert.equal(down.status, 503);
    assert.deepEqual(down.json(), { status: 'unavailable', store: 'probed', error: 'disk I/O error' });
  });

  it('serves Prometheus metrics: outcomes, store latency, leases in flight', {
    timeout: 20_000,
  }, async () => {
    const g = await gateway({ store: memoryStore({ sweepIntervalMs: 0 }) });
    const key = 'metrics-key';
    await post(g.url, '/payments', key); // executed
    await post(g.url, '/payments', key); // replayed
    await post(g.url, '/payments', key, '{"amount":2}'); // mismatch
    await post(g.url, '/payments', 'metrics-key-2'); // executed
    await send(g.url, '/payments', { headers: { 'idempotency-key': '' }, body: '{}' }); // invalid
    await send(g.url, '/payments', { method: 'GET' }); // passthrough
    await post(g.url, '/payments', null); // passthrough (no key)
    const gated = post(g.url, '/gated', 'gated-key');
    while (g.upstream.app.count('gated') === 0) await new Promise((r) => setTimeout(r, 5));
    await post(g.url, '/gated', 'gated-key'); // conflict

    const during = await send(g.url, '/_oncely/metrics', { method: 'GET' });
    assert.equal(during.status, 200);
    assert.match(during.header('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = during.body.toString();
    assert.equal(sample(text, 'oncely_gateway_leases_in_flight'), 1, 'the gated request holds one lease');
    g.upstream.gate.open();
    await gated;

    const final = (await send(g.url, '/_oncely/metrics', { method: 'GET' })).body.toString();
    const outcome = (name: string) => sample(final, `oncely_gateway_requests_total{outcome="${name}"}`);
    assert.equal(outcome('executed'), 3);
    assert.equal(outcome('replayed'), 1);
    assert.equal(outcome('mismatch'), 1);
    assert.equal(outcome('conflict'), 1);
    assert.equal(outcome('invalid'), 1);
    assert.equal(outcome('passthrough'), 2);
    assert.equal(sample(final, 'oncely_gateway_leases_in_flight'), 0);
    assert.equal(sample(final, 'oncely_gateway_commits_total{result="stored"}'), 3);
    // Every acquire went through the timed store: one per recorded request that reached the engine.
    assert.equal(sample(final, 'oncely_gateway_store_duration_seconds_count{operation="acquire"}'), 6);
    assert.ok(
      sample(final, 'oncely_gateway_store_duration_seconds_bucket{operation="acquire",le="+Inf"}') === 6,
    );
    assert.match(final, /^# TYPE oncely_gateway_store_duration_seconds histogram$/m);
    assert.match(final, /^# TYPE oncely_gateway_requests_total counter$/m);
    assert.match(final, /^# TYPE oncely_gateway_leases_in_flight gauge$/m);
    // Admin requests are neither proxied nor counted as requests.
    assert.equal(g.upstream.received.filter((r) => r.url.startsWith('/_oncely')).length, 0);
  });

  it('reserves its prefix: unknown paths 404, other methods 405; an empty prefix serves the two at the root', {
    timeout: 20_000,
  }, async () => {
    const g = await gateway({ store: memoryStore({ sweepIntervalMs: 0 }) });
    assert.equal((await send(g.url, '/_oncely/other', { method: 'GET' })).status, 404);
    const wrong = await send(g.url, '/_oncely/metrics', { method: 'POST', body: 'x' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.header('allow'), 'GET, HEAD');

    const root = await gateway({ store: memoryStore({ sweepIntervalMs: 0 }), adminPrefix: '' });
    assert.equal((await send(root.url, '/healthz', { method: 'GET' })).status, 200);
    assert.equal((await send(root.url, '/metrics', { method: 'GET' })).status, 200);
    // Anything else goes to the upstream, /_oncely included.
    assert.equal((await send(root.url, '/_oncely/healthz', { method: 'GET' })).status, 404);
    assert.equal(root.upstream.received.length, 0, 'the test upstream has no such route and counted nothing');
  });

  it('logs one JSON-able line per recorded request, with the key hash, never the raw key, scope or body', {
    timeout: 20_000,
  }, async () => {
    const g = await gateway({ store: memoryStore({ sweepIntervalMs: 0 }), scopeHeader: 'authorization' });
    const key = 'raw-key-SECRET-7f3a';
    const secretBody = '{"card":"4242424242424242"}';
    const auth = 'Bearer sk_live_TOPSECRET';
    await post(g.url, '/payments', key, secretBody, { authorization: auth }); // executed
    await post(g.url, '/payments', key, secretBody, { authorization: auth }); // replayed
    await post(g.url, '/payments', key, '{"card":"5555"}', { authorization: auth }); // mismatch
    await send(g.url, '/payments', { method: 'GET', headers: { 'idempotency-key': key } }); // passthrough: not logged
    await send(g.url, '/payments', { headers: { 'idempotency-key': `"${key}` }, body: secretBody }); // invalid

    const requests = g.logs.filter((entry) => entry.msg === 'request');
    assert.deepEqual(
      requests.map((entry) => entry.outcome),
      ['executed', 'replayed', 'mismatch', 'invalid'],
    );
    const { scopeOf } = await import('./scope.ts');
    const keyHash = recordId(scopeOf(auth), key);
    for (const entry of requests.slice(0, 3)) {
      assert.equal(entry.keyHash, keyHash);
      assert.equal(entry.method, 'POST');
      assert.equal(entry.path, '/payments');
      assert.equal(typeof entry.durationMs, 'number');
      assert.equal(typeof entry.status, 'number');
    }
    assert.deepEqual(
      requests.map((entry) => entry.status),
      [201, 201, 422, 400],
    );
    assert.equal(requests[0]!.commit, 'stored');
    const text = g.logs.map((entry) => JSON.stringify(entry)).join('\n');
    for (const secret of [key, 'SECRET', '4242', 'sk_live', 'TOPSECRET', scopeOf(auth)]) {
      assert.ok(!text.includes(secret), `logs never contain ${secret}`);
    }
  });
});
