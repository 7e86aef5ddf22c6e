// An upstream that acts on a request and then drops the connection without answering (a worker
// killed mid-request) must not see that request twice from the gateway (RFC 9110 §9.2.2): only a
// bodyless GET, HEAD or OPTIONS is sent again on its own. And the gateway lets idle upstream
// connections go before the upstream does, so the race that makes such failures common is avoided.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { memoryStore } from '@oncely/core';
import { createGateway, type GatewayOptions } from './gateway.ts';
import { newKey, post, send } from './test-client.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Seen {
  method: string;
  path: string;
  /** Which connection (1, 2, …) and which request on it (1, 2, …). */
  connection: number;
  nth: number;
}

/**
 * A raw HTTP/1.1 keep-alive upstream: the first request on each connection is answered; any later
 * one on the same connection is read (it "charges": it is in `seen`) and then the connection is
 * dropped without a byte of response, by reset or by a plain close.
 */
async function droppingUpstream(drop: 'reset' | 'close'): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const connection = ++connections;
    let nth = 0;
    let buffer = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const [line = '', ...fields] = buffer.subarray(0, end).toString('latin1').split('\r\n');
        const headers = new Map(
          fields.map((field) => {
            const colon = field.indexOf(':');
            return [field.slice(0, colon).trim().toLowerCase(), field.slice(colon + 1).trim()];
          }),
        );
        assert.equal(headers.get('transfer-encoding'), undefined, 'the tests send Content-Length bodies');
        const length = Number(headers.get('content-length') ?? 0);
        if (buffer.length < end + 4 + length) return;
        buffer = buffer.subarray(end + 4 + length);
        const [method = '', path = ''] = line.split(' ');
        seen.push({ method, path, connection, nth: ++nth });
        if (nth > 1) {
          if (drop === 'reset') socket.resetAndDestroy();
          else socket.destroy();
          return;
        }
        const body = method === 'HEAD' ? '' : JSON.stringify({ n: seen.length });
        const status = method === 'POST' ? '201 Created' : '200 OK';
        socket.write(
          `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${method === 'HEAD' ? 2 : body.length}\r\n\r\n${body}`,
        );
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen };
}

async function gatewayFor(upstream: string, options: Partial<GatewayOptions> = {}): Promise<string> {
  const gateway = createGateway({ store: memoryStore({ sweepIntervalMs: 0 }), ...options, upstream });
  const url = await gateway.listen({ port: 0 });
  cleanups.push(() => gateway.close());
  return url;
}

const requestsTo = (seen: Seen[], method: string, path: string): Seen[] =>
  seen.filter((r) => r.method === method && r.path === path);

describe('an upstream that drops the connection after acting on the request', () => {
  for (const drop of ['reset', 'close'] as const) {
    it(`does not send a recorded POST again (dropped by ${drop}): 502, the key released`, async () => {
      const upstream = await droppingUpstream(drop);
      const gateway = await gatewayFor(upstream.url);
      // The first request opens the connection the gateway keeps alive; the POST goes out on it.
      assert.equal((await send(gateway, '/warm', { method: 'GET' })).status, 200);
      const key = newKey();
      const first = await post(gateway, '/charge', key);
      assert.equal(requestsTo(upstream.seen, 'POST', '/charge').length, 1, 'charged once, not twice');
      assert.equal(first.status, 502, `got ${first.status} ${first.body}`);
      const problem = first.json();
      assert.equal(problem.code, 'ERR_ONCELY_UPSTREAM_UNAVAILABLE');
      assert.match(String(problem.detail), /may have reached/);
      assert.match(String(problem.detail), /retry with the same key/i);

      // The key was released: the retry runs (the upstream sees the same key and can dedupe), and is kept.
      const retry = await post(gateway, '/charge', key);
      assert.equal(retry.status, 201);
      assert.equal(requestsTo(upstream.seen, 'POST', '/charge').length, 2);
      const replay = await post(gateway, '/charge', key);
      assert.equal(replay.header('idempotent-replayed'), 'true');
      assert.deepEqual(replay.body, retry.body);
      assert.equal(requestsTo(upstream.seen, 'POST', '/charge').length, 2);
    });
  }

  it('says the request may have reached the upstream only when a connection was made', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as { port: number };
    closed.close();
    await once(closed, 'close');
    const gateway = await gatewayFor(`http://127.0.0.1:${port}`);
    const refused = await post(gateway, '/charge', newKey());
    assert.equal(refused.status, 502);
    assert.doesNotMatch(String(refused.json().detail), /may have reached/);
    assert.match(String(refused.json().detail), /ECONNREFUSED.*retry with the same key/);
  });

  for (const method of ['POST', 'PATCH', 'PUT', 'DELETE']) {
    it(`does not send a passthrough ${method} again, even without a body`, async () => {
      const upstream = await droppingUpstream('reset');
      const gateway = await gatewayFor(upstream.url);
      assert.equal((await send(gateway, '/warm', { method: 'GET' })).status, 200);
      const reply = await send(gateway, '/charge', { method });
      assert.equal(requestsTo(upstream.seen, method, '/charge').length, 1, `${method} reached it once`);
      assert.equal(reply.status, 502, `got ${reply.status} ${reply.body}`);
      assert.equal(reply.json().code, 'ERR_ONCELY_UPSTREAM_UNAVAILABLE');
    });
  }

  it('does not send a passthrough POST with a body again', async () => {
    const upstream = await droppingUpstream('reset');
    const gateway = await gatewayFor(upstream.url);
    assert.equal((await send(gateway, '/warm', { method: 'GET' })).status, 200);
    const reply = await post(gateway, '/charge', null);
    assert.equal(reply.status, 502);
    assert.equal(requestsTo(upstream.seen, 'POST', '/charge').length, 1);
  });

  for (const method of ['GET', 'HEAD', 'OPTIONS']) {
    it(`sends a bodyless ${method} once more on a new connection`, async () => {
      const upstream = await droppingUpstream('close');
      const gateway = await gatewayFor(upstream.url);
      assert.equal((await send(gateway, '/warm', { method: 'GET' })).status, 200);
      const reply = await send(gateway, '/read', { method });
      assert.equal(reply.status, 200, `got ${reply.status} ${reply.body}`);
      const tries = requestsTo(upstream.seen, method, '/read');
      assert.deepEqual(
        tries.map(({ connection, nth }) => [connection, nth]),
        [
          [1, 2],
          [2, 1],
        ],
        'dropped on the reused connection, answered on a new one',
      );
    });
  }
});

describe('upstreamIdleTimeoutMs', () => {
  /** A node:http upstream that keeps idle connections 10 s (and says so), counting connections. */
  async function countingUpstream(): Promise<{ url: string; connections: () => number }> {
    const server = createHttpServer({ keepAliveTimeout: 10_000 }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
    let connections = 0;
    server.on('connection', () => connections++);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(async () => {
      server.closeAllConnections();
      server.close();
    });
    return {
      url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
      connections: () => connections,
    };
  }

  it('drops an idle upstream connection after the option, so a later request opens a new one', async () => {
    const upstream = await countingUpstream();
    const gateway = await gatewayFor(upstream.url, { upstreamIdleTimeoutMs: 300 });
    assert.equal((await send(gateway, '/a', { method: 'GET' })).status, 200);
    await sleep(600);
    assert.equal((await send(gateway, '/b', { method: 'GET' })).status, 200);
    assert.equal(upstream.connections(), 2);
  });

  it('reuses an upstream connection idle for less than the option', async () => {
    const upstream = await countingUpstream();
    const gateway = await gatewayFor(upstream.url, { upstreamIdleTimeoutMs: 3_000 });
    assert.equal((await send(gateway, '/a', { method: 'GET' })).status, 200);
    await sleep(600);
    assert.equal((await send(gateway, '/b', { method: 'GET' })).status, 200);
    assert.equal(upstream.connections(), 1);
  });

  it('must be at least 1 ms', () => {
    assert.throws(
      () =>
        createGateway({
          upstream: 'http://127.0.0.1:1',
          store: memoryStore({ sweepIntervalMs: 0 }),
          upstreamIdleTimeoutMs: 0,
        }),
      { code: 'ERR_ONCELY_INVALID_OPTION', message: /upstreamIdleTimeoutMs must be/ },
    );
  });
});
