// The gateway's own behaviour as a proxy, over real sockets: streaming, header handling, limits,
// upstream failures, concurrency. The idempotency semantics are the HTTP suite's (behaviour.test.ts).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { memoryStore, recordId, type Store } from '@oncely/core';
import { sqliteStore } from '@oncely/sqlite';
import type { GatewayOptions } from './gateway.ts';
import { newKey, post, send } from './test-client.ts';
import { type InProcessGateway, startGateway } from './test-gateway.ts';

const dir = mkdtempSync(join(tmpdir(), 'oncely-proxy-'));
const running: InProcessGateway[] = [];
after(async () => {
  for (const g of running.splice(0)) await g.close();
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
async function gateway(
  options: Partial<Omit<GatewayOptions, 'upstream' | 'log'>> & { upstream?: string } = {},
): Promise<InProcessGateway & { store: Store }> {
  const store =
    options.store ?? sqliteStore({ database: join(dir, `proxy-${++files}.db`), sweepIntervalMs: 0 });
  const g = await startGateway({ ...options, store });
  running.push(g);
  return { ...g, store };
}

const id = (key: string): string => recordId('', key);

describe('gateway as a proxy', () => {
  it('with a scope header, refuses a keyed request without it (fail closed), unless told to allow it', async () => {
    const strict = await gateway({
      store: memoryStore({ sweepIntervalMs: 0 }),
      scopeHeader: 'authorization',
    });
    const key = newKey();
    const refused = await post(strict.url, '/payments', key, '{"amount":1}');
    assert.equal(refused.status, 400);
    assert.equal(refused.json().code, 'ERR_ONCELY_SCOPE_MISSING');
    assert.equal(strict.upstream.received.length, 0, 'nothing reached the upstream');
    const scoped = await post(strict.url, '/payments', key, '{"amount":1}', { authorization: 'Bearer a' });
    assert.equal(scoped.status, 201);
    // Without a key nothing is recorded, so nothing needs a tenant.
    assert.equal((await post(strict.url, '/payments', null, '{"amount":1}')).status, 201);

    const lax = await gateway({
      store: memoryStore({ sweepIntervalMs: 0 }),
      scopeHeader: 'authorization',
      requireScope: false,
    });
    assert.equal((await post(lax.url, '/payments', key, '{"amount":1}')).status, 201);
  });

  it('does not hold other keys behind a slow upstream call', { timeout: 20_000 }, async () => {
    const g = await gateway();
    const slow = post(g.url, '/gated', newKey());
    while (g.upstream.app.count('gated') === 0) await new Promise((r) => setTimeout(r, 5));
    // While the gated call is held at the upstream, 20 other keys go through to completion.
    const others = await Promise.all(Array.from({ length: 20 }, () => post(g.url, '/payments', newKey())));
    assert.deepEqual(
      others.map((r) => r.status),
      Array(20).fill(201),
    );
    assert.equal(g.upstream.app.count('payments'), 20);
    g.upstream.gate.open();
    assert.equal((await slow).status, 201);
  });

  it('passes 200 concurrent distinct keys, then replays all 200', { timeout: 60_000 }, async () => {
    const g = await gateway();
    const keys = Array.from({ length: 200 }, newKey);
    const started = performance.now();
    const first = await Promise.all(keys.map((key, i) => post(g.url, '/payments', key, `{"amount":${i}}`)));
    const executedMs = performance.now() - started;
    assert.deepEqual(
      first.map((r) => r.status),
      Array(200).fill(201),
    );
    assert.equal(g.upstream.app.count('payments'), 200);
    const replayStarted = performance.now();
    const again = await Promise.all(keys.map((key, i) => post(g.url, '/payments', key, `{"amount":${i}}`)));
    const replayMs = performance.now() - replayStarted;
    for (let i = 0; i < 200; i++) {
      assert.equal(again[i]!.header('idempotent-replayed'), 'true');
      assert.deepEqual(again[i]!.json(), first[i]!.json());
    }
    assert.equal(g.upstream.app.count('payments'), 200, 'no replay reached the upstream');
    console.log(
      `# 200 concurrent keys (sqlite): executed in ${executedMs.toFixed(0)} ms, replayed in ${replayMs.toFixed(0)} ms`,
    );
  });

  it('drops hop-by-hop fields both ways, forwards Idempotency-Key, adds X-Forwarded-*', {
    timeout: 20_000,
  }, async () => {
    const g = await gateway();
    const key = newKey();
    for (const method of ['POST', 'GET']) {
      const reply = await send(g.url, '/inspect?x=1', {
        method,
        headers: [
          ['Host', new URL(g.url).host], // a header list gets no Host from node:http
          ['Idempotency-Key', key],
          ['Connection', 'keep-alive, X-Hop'],
          ['X-Hop', 'secret'],
          ['Keep-Alive', 'timeout=5'],
          ['Proxy-Authorization', 'Basic cHJveHk6c2VjcmV0'],
          ['TE', 'trailers'],
          ['X-Forwarded-For', '203.0.113.7'],
          ['X-End-To-End', 'kept'],
          ['X-Repeated', 'one'],
          ['X-Repeated', 'two'],
        ],
        ...(method === 'POST' ? { body: '{"a":1}' } : {}),
      });
      assert.equal(reply.status, 200, `${method}: ${reply.body}`);
      const seen = reply.json() as { url: string; headers: Array<[string, string]> };
      const names = seen.headers.map(([name]) => name.toLowerCase());
      const value = (name: string) =>
        seen.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
      for (const hop of ['x-hop', 'keep-alive', 'proxy-authorization', 'te', 'upgrade', 'trailer']) {
        assert.ok(!names.includes(hop), `${method}: ${hop} is not forwarded`);
      }
      assert.deepEqual(value('connection'), ['keep-alive'], `${method}: only the gateway's own Connection`);
      assert.equal(seen.url, '/inspect?x=1');
      assert.deepEqual(value('idempotency-key'), [key], `${method}: the key goes upstream`);
      assert.deepEqual(value('x-end-to-end'), ['kept']);
      assert.deepEqual(value('x-repeated'), ['one', 'two'], 'repeated fields stay apart, in order');
      assert.deepEqual(value('x-forwarded-for'), ['203.0.113.7, 127.0.0.1']);
      assert.deepEqual(value('x-forwarded-proto'), ['http']);
      assert.deepEqual(value('x-forwarded-host'), [new URL(g.url).host]);
      assert.deepEqual(value('host'), [new URL(g.upstream.url).host], 'Host names the upstream');

      const got = reply.headers.map(([name]) => name.toLowerCase());
      for (const hop of ['x-resp-hop', 'proxy-authenticate', 'trailer', 'upgrade']) {
        assert.ok(!got.includes(hop), `${method}: the response's ${hop} is not passed on`);
      }
      // The gateway's server may send a Keep-Alive of its own for this hop, never the upstream's.
      assert.ok(
        !reply.headers.some(([, v]) => v.includes('timeout=77')),
        `${method}: upstream Keep-Alive dropped`,
      );
      assert.equal(reply.header('x-end-to-end'), 'kept');
      assert.notEqual(reply.header('connection')?.toLowerCase().includes('x-resp-hop'), true);
    }
    // The recorded one replays without them too.
    const replay = await send(g.url, '/inspect?x=1', {
      method: 'POST',
      headers: [
        ['Host', new URL(g.url).host],
        ['Idempotency-Key', key],
        ['X-Forwarded-For', '203.0.113.7'],
      ],
      body: '{"a":1}',
    });
    assert.equal(replay.header('idempotent-replayed'), 'true');
    assert.equal(replay.header('x-resp-hop'), undefined);
    assert.equal(replay.header('x-end-to-end'), 'kept');
    assert.equal(g.upstream.app.count('inspect'), 2);
  });

  it('answers 413 for an oversize recorded body before the store or the upstream see it', {
    timeout: 20_000,
  }, async () => {
    const g = await gateway({ maxBodyBytes: 1024 });
    const big = `{"pad":"${'x'.repeat(2000)}"}`;
    const declared = newKey();
    const reply = await post(g.url, '/echo', declared, big);
    assert.equal(reply.status, 413, reply.body.toString());
    assert.equal(reply.json().code, 'ERR_ONCELY_BODY_TOO_LARGE');
    assert.match(reply.header('content-type') ?? '', /^application\/problem\+json/);

    // Chunked, without Content-Length: refused once the bytes pass the limit.
    const chunkedKey = newKey();
    const chunked = await send(g.url, '/echo', {
      headers: { 'idempotency-key': chunkedKey, 'content-type': 'application/octet-stream' },
      chunks: [Buffer.alloc(800, 1), Buffer.alloc(800, 2)],
    });
    assert.equal(chunked.status, 413);
    assert.equal(g.upstream.app.count('echo'), 0, 'the upstream saw nothing');
    assert.equal(await g.store.get({ id: id(declared), now: Date.now() }), null, 'nothing was recorded');
    assert.equal(await g.store.get({ id: id(chunkedKey), now: Date.now() }), null);

    // At the limit it runs; a request without a key streams through whatever its size.
    const exact = Buffer.alloc(1024, 7);
    const ok = await send(g.url, '/echo', {
      headers: { 'idempotency-key': newKey(), 'content-type': 'application/octet-stream' },
      body: exact,
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, exact);
    const streamed = await post(g.url, '/echo', null, big);
    assert.equal(streamed.status, 200);
    assert.equal(streamed.body.toString(), big);
    assert.equal(g.gateway.metrics.count('too_large'), 2);
  });

  it('answers 502 when the upstream is unreachable, and releases the key', { timeout: 20_000 }, async () => {
    const closed = await unusedPort();
    const g = await gateway({ upstream: `http://127.0.0.1:${closed}` });
    const key = newKey();
    const reply = await post(g.url, '/payments', key);
    assert.equal(reply.status, 502);
    assert.equal(reply.json().code, 'ERR_ONCELY_UPSTREAM_UNAVAILABLE');
    assert.equal(reply.json().status, 502);
    assert.match(String(reply.json().type), /docs\/errors\.md#err_oncely_upstream_unavailable$/);
    assert.equal(await g.store.get({ id: id(key), now: Date.now() }), null, 'the key is free again');
    assert.equal((await post(g.url, '/payments', key)).status, 502, 'a retry runs again (and fails again)');
    const passthrough = await send(g.url, '/payments', { method: 'GET' });
    assert.equal(passthrough.status, 502, 'unrecorded requests get the same problem');
  });

  it('answers 502 when the upstream breaks off, before or during its response, and releases the key', {
    timeout: 20_000,
  }, async () => {
    const g = await gateway();
    for (const path of ['/reset', '/reset-mid']) {
      const key = newKey();
      const reply = await post(g.url, path, key);
      assert.equal(reply.status, 502, `${path}: ${reply.body}`);
      assert.equal(reply.json().code, 'ERR_ONCELY_UPSTREAM_UNAVAILABLE');
      assert.equal(await g.store.get({ id: id(key), now: Date.now() }), null, `${path}: key released`);
      assert.equal((await post(g.url, path, key)).status, 502);
    }
    assert.equal(g.upstream.app.count('reset'), 2, 'the retry ran again');
    assert.equal(g.upstream.app.count('reset-mid'), 2);
  });

  it('answers 504 when the upstream stays silent, and releases the key', { timeout: 20_000 }, async () => {
    const g = await gateway({ upstreamTimeoutMs: 200 });
    const key = newKey();
    const reply = await post(g.url, '/hang', key);
    assert.equal(reply.status, 504);
    assert.equal(reply.json().code, 'ERR_ONCELY_UPSTREAM_TIMEOUT');
    assert.equal(await g.store.get({ id: id(key), now: Date.now() }), null);
    assert.equal((await post(g.url, '/hang', key)).status, 504);
    assert.equal(g.upstream.app.count('hang'), 2);
    assert.equal(g.gateway.metrics.count('upstream_timeout'), 2);
    const line = g.logs.find((entry) => entry.outcome === 'upstream_timeout');
    assert.equal(line?.level, 'warn');
    assert.equal(line?.status, 504);
  });

  it('streams unrecorded responses as they come, not once complete', { timeout: 20_000 }, async () => {
    const g = await gateway();
    const url = new URL('/stream-gated', g.url);
    const first = await new Promise<string>((resolve, reject) => {
      const req = request(url, { agent: false }, (res) => {
        res.once('data', (chunk: Buffer) => resolve(chunk.toString()));
        res.on('end', () => {});
      });
      req.on('error', reject);
      req.end();
    });
    // The upstream has not finished (it waits at the gate), yet the first chunk arrived.
    assert.equal(first, 'first\n');
    g.upstream.gate.open();
  });

  it('keeps a chunked binary response byte for byte, and relays one over --max-response whole', {
    timeout: 20_000,
  }, async () => {
    const g = await gateway({ maxResponseBytes: 100_000 });
    const expected = (size: number) => Buffer.from(Array.from({ length: size }, (_, i) => i % 251));
    const key = newKey();
    const first = await post(g.url, '/big-chunked?size=90000', key);
    assert.deepEqual(first.body, expected(90_000));
    const replay = await post(g.url, '/big-chunked?size=90000', key);
    assert.equal(replay.header('idempotent-replayed'), 'true');
    assert.deepEqual(replay.body, expected(90_000));

    const bigKey = newKey();
    const big = await post(g.url, '/big-chunked?size=300000', bigKey);
    assert.equal(big.status, 200);
    assert.deepEqual(big.body, expected(300_000), 'the first client gets every byte');
    const retry = await post(g.url, '/big-chunked?size=300000', bigKey);
    assert.equal(retry.status, 409);
    assert.equal(retry.json().code, 'ERR_ONCELY_RESPONSE_NOT_STORED');
    assert.equal(g.upstream.app.count('big-chunked'), 2);
  });

  it('frees the key for a response marked Oncely-Release, and never passes the mark on', {
    timeout: 20_000,
  }, async () => {
    const g = await gateway({ cache: 'stripe' });
    const key = newKey();
    const first = await post(g.url, '/throw', key);
    assert.equal(first.status, 500);
    assert.equal(first.header('oncely-release'), undefined);
    const again = await post(g.url, '/throw', key);
    assert.equal(again.header('idempotent-replayed'), undefined);
    assert.equal(g.upstream.app.count('throw'), 2);
  });

  it('finishes requests in flight on close, then stops', { timeout: 20_000 }, async () => {
    const g = await startGateway({ store: memoryStore({ sweepIntervalMs: 0 }) });
    const key = newKey();
    const pending = post(g.url, '/gated', key);
    while (g.upstream.app.count('gated') === 0) await new Promise((r) => setTimeout(r, 5));
    let closed = false;
    const closing = g.gateway.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(closed, false, 'close waits for the request in flight');
    await assert.rejects(post(g.url, '/payments', newKey()), 'no new connections');
    g.upstream.gate.open();
    assert.equal((await pending).status, 201);
    await closing;
    assert.equal(g.gateway.server.listening, false);
    await g.upstream.close();
  });
});

/** A port with nothing listening on it (bound, then closed). */
async function unusedPort(): Promise<number> {
  const server: Server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}
