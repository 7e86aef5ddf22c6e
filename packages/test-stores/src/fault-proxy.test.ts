// The fault proxy over real sockets: in front of a local echo server, and once in front of the
// shared Redis (which it must never stall for anyone else: only its own connections are held).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type FaultProxy, faultProxy } from './fault-proxy.ts';
import { DATABASE_URL, REDIS_URL } from './index.ts';

let echo: Server;
let echoPort: number;
const proxies: FaultProxy[] = [];
before(async () => {
  echo = createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  echoPort = (echo.address() as { port: number }).port;
});
after(async () => {
  for (const proxy of proxies.splice(0)) await proxy.close();
  echo.close();
});

async function echoProxy(): Promise<FaultProxy> {
  const proxy = await faultProxy({ host: '127.0.0.1', port: echoPort });
  proxies.push(proxy);
  return proxy;
}

/** A connected client that collects what it receives. */
async function client(proxy: FaultProxy): Promise<{ socket: Socket; received: () => string }> {
  const socket = connect(proxy.port, '127.0.0.1');
  await once(socket, 'connect');
  let text = '';
  socket.on('data', (data: Buffer) => {
    text += data.toString();
  });
  return { socket, received: () => text };
}

async function until(check: () => boolean, what: string, timeoutMs = 2_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

describe('faultProxy in front of an echo server', () => {
  it('forwards bytes both ways and counts connections', async () => {
    const proxy = await echoProxy();
    const { socket, received } = await client(proxy);
    socket.write('hello');
    await until(() => received() === 'hello', 'the echo');
    assert.equal(proxy.connections, 1);
    assert.equal(proxy.accepted, 1);
    assert.match(proxy.url(), new RegExp(`^http://127\\.0\\.0\\.1:${proxy.port}$`));
    assert.equal(proxy.url('redis://:pw@10.0.0.1:6379/2'), `redis://:pw@127.0.0.1:${proxy.port}/2`);
    socket.end();
    await until(() => proxy.connections === 0, 'the connection to close');
  });

  it('holds bytes while paused, connection open, and delivers them in order on resume', async () => {
    const proxy = await echoProxy();
    const { socket, received } = await client(proxy);
    proxy.pause();
    for (const part of ['one,', 'two,', 'three']) {
      socket.write(part);
      await sleep(20);
    }
    await sleep(200);
    assert.equal(received(), '', 'no echo while paused');
    assert.equal(socket.destroyed, false);
    assert.equal(proxy.connections, 1);
    await proxy.resume();
    await until(() => received() === 'one,two,three', 'the held bytes');
    socket.write('|after');
    await until(() => received() === 'one,two,three|after', 'bytes after resume');
    socket.destroy();
  });

  it('resets every open connection: the client sees ECONNRESET', async () => {
    const proxy = await echoProxy();
    const { socket } = await client(proxy);
    const failed = once(socket, 'error');
    await proxy.resetAll();
    const [error] = (await failed) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNRESET');
    assert.equal(proxy.connections, 0);
  });

  it('adds the delay to each chunk, in each direction', async () => {
    const proxy = await echoProxy();
    const { socket, received } = await client(proxy);
    proxy.delay(150);
    const started = performance.now();
    socket.write('ping');
    await until(() => received() === 'ping', 'the delayed echo');
    const elapsed = performance.now() - started;
    // Timers fire on the loop's millisecond clock, so allow a millisecond per hop.
    assert.ok(elapsed >= 2 * 150 - 2, `round trip took ${elapsed.toFixed(1)} ms`);
    proxy.delay(0);
    socket.destroy();
  });

  it('closes new connections at once while dropping, and refuses while refusing', async () => {
    const proxy = await echoProxy();
    const kept = await client(proxy);
    proxy.dropNew(true);
    const dropped = connect(proxy.port, '127.0.0.1');
    dropped.on('error', () => {});
    await once(dropped, 'close');
    proxy.dropNew(false);
    await proxy.refuse(true);
    const refused = connect(proxy.port, '127.0.0.1');
    const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNREFUSED');
    kept.socket.write('still');
    await until(() => kept.received() === 'still', 'the open connection to keep working');
    await proxy.refuse(false);
    const again = await client(proxy);
    again.socket.write('back');
    await until(() => again.received() === 'back', 'a new connection after refuse(false)');
    assert.equal(proxy.accepted, 2, 'the dropped connection was never forwarded');
    kept.socket.destroy();
    again.socket.destroy();
  });
});

describe('faultProxy in front of Redis, HTTP and PostgreSQL', () => {
  it('stalls a Redis connection: a command times out while paused, the next works after resume', {
    timeout: 10_000,
  }, async () => {
    const target = new URL(REDIS_URL);
    const proxy = await faultProxy({ host: target.hostname, port: Number(target.port || 6379) });
    proxies.push(proxy);
    const redis = new Redis(proxy.url(REDIS_URL), {
      lazyConnect: true,
      commandTimeout: 200,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => {});
    try {
      await redis.connect();
      assert.equal(await redis.ping(), 'PONG');
      proxy.pause();
      await assert.rejects(redis.ping(), /timed out/i);
      await proxy.resume();
      assert.equal(await redis.ping('again'), 'again');
    } finally {
      redis.disconnect();
    }
  });

  it('carries HTTP to an upstream, and resets its kept-alive connection', async () => {
    const upstream = createHttpServer((req, res) => res.end(`you asked for ${req.url}`));
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const proxy = await faultProxy({
      host: '127.0.0.1',
      port: (upstream.address() as { port: number }).port,
    });
    proxies.push(proxy);
    try {
      const reply = await fetch(`${proxy.url()}/orders?id=1`);
      assert.equal(await reply.text(), 'you asked for /orders?id=1');
      assert.equal(proxy.connections, 1, 'the client keeps its connection alive');
      await proxy.resetAll();
      assert.equal(proxy.connections, 0);
    } finally {
      upstream.closeAllConnections();
      upstream.close();
    }
  });

  it('carries a PostgreSQL session', { timeout: 10_000 }, async () => {
    const target = new URL(DATABASE_URL);
    const proxy = await faultProxy({ host: target.hostname, port: Number(target.port || 5432) });
    proxies.push(proxy);
    const db = new pg.Client({ connectionString: proxy.url(DATABASE_URL), connectionTimeoutMillis: 5_000 });
    await db.connect();
    try {
      const { rows } = await db.query('SELECT 1 AS one');
      assert.deepEqual(rows, [{ one: 1 }]);
      assert.equal(proxy.connections, 1);
    } finally {
      await db.end();
    }
  });
});
