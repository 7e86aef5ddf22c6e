/**
 * A TCP proxy for tests that need a sick network between a client and a real server: stalled
 * (bytes held, connections open), slow, reset, or refusing. It sits in front of the shared Redis,
 * PostgreSQL or an HTTP upstream and only ever acts on its own two sockets per connection: the real
 * server is never stopped or paused, so other suites using it at the same time see nothing.
 */

import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface FaultProxyOptions {
  /** The server to forward to, e.g. `127.0.0.1`. */
  host: string;
  /** Its port, e.g. 6379. */
  port: number;
}

/** A running fault proxy; see {@link faultProxy}. */
export interface FaultProxy {
  /** Always `127.0.0.1`: the proxy listens on loopback only. */
  readonly host: string;
  /** The free port the proxy listens on (the same one after `refuse(false)`). */
  readonly port: number;
  /**
   * `http://127.0.0.1:<port>` without an argument; with one, that URL pointed at the proxy, scheme,
   * credentials, path and query kept: `url(REDIS_URL)`, `url(DATABASE_URL)`, `url(upstream.url)`.
   */
  url(target?: string | URL): string;
  /**
   * Stop forwarding bytes in both directions. They are buffered (in memory, without limit) and
   * connections stay open and keep being accepted: to a client this is a server that stalled.
   */
  pause(): void;
  /** Forward again: the buffered bytes first, in the order they came. Resolves once they are written. */
  resume(): Promise<void>;
  /** Hold every chunk `ms` (in each direction) before forwarding it; 0 turns it off. Order is kept. */
  delay(ms: number): void;
  /**
   * Reset every open connection: the client side with a TCP RST (the client sees ECONNRESET), the
   * server side closed. Resolves once both sides of each are closed.
   */
  resetAll(): Promise<void>;
  /** While on, every new connection is accepted and closed at once, before any byte; open ones are kept. */
  dropNew(on: boolean): void;
  /** While on, nothing listens on the port (new connections get ECONNREFUSED); open ones are kept. */
  refuse(on: boolean): Promise<void>;
  /** Connections open through the proxy now (dropped ones never count). */
  readonly connections: number;
  /** Connections forwarded since the start. */
  readonly accepted: number;
  /** Stop listening and close every connection (no reset). */
  close(): Promise<void>;
}

/** Bytes (or, as `null`, the end) from one side, to be written to the other once due. */
interface Chunk {
  data: Buffer | null;
  /** `performance.now()` from which it may be forwarded. */
  due: number;
}

/** One direction of one connection. */
interface Lane {
  to: Socket;
  queue: Chunk[];
  running: Promise<void> | undefined;
}

interface Pair {
  client: Socket;
  server: Socket;
  lanes: [Lane, Lane];
  closed: Promise<void>;
}

/**
 * Start a fault proxy on 127.0.0.1 in front of `host:port`. Every accepted connection gets a
 * connection of its own to the target; bytes flow as they come until a control says otherwise.
 * @example
 * const proxy = await faultProxy({ host: '127.0.0.1', port: 6379 });
 * const redis = new Redis(proxy.url(REDIS_URL), { commandTimeout: 200 });
 * proxy.pause(); // redis.ping() now times out
 * await proxy.resume();
 */
export async function faultProxy({ host, port: targetPort }: FaultProxyOptions): Promise<FaultProxy> {
  const pairs = new Set<Pair>();
  let paused = false;
  let delayMs = 0;
  let dropping = false;
  let accepted = 0;

  /** Forward what is due, in order, until the lane is empty or paused. */
  const pump = (lane: Lane): Promise<void> => {
    lane.running ??= (async (): Promise<void> => {
      // Lets `lane.running` be set before the loop can end and clear it.
      await null;
      try {
        while (lane.queue.length > 0 && !paused && !lane.to.destroyed) {
          const wait = lane.queue[0]!.due - performance.now();
          if (wait > 0) {
            await sleep(wait);
            continue; // paused meanwhile, perhaps
          }
          const { data } = lane.queue.shift()!;
          if (lane.to.writableEnded) continue;
          if (data === null) lane.to.end();
          else lane.to.write(data);
        }
      } finally {
        // Synchronously after the loop's last check: a chunk queued from now on starts a new run.
        lane.running = undefined;
      }
    })();
    return lane.running;
  };

  const enqueue = (lane: Lane, data: Buffer | null): void => {
    lane.queue.push({ data, due: performance.now() + delayMs });
    void pump(lane);
  };

  /** Pass a failure on to the other side, as a reset or as a close. */
  const fail = (to: Socket, reset: boolean): void => {
    if (to.destroyed) return;
    if (reset) to.resetAndDestroy();
    else to.destroy();
  };

  const accept = (client: Socket): void => {
    if (dropping) {
      client.on('error', () => {});
      client.destroy();
      return;
    }
    accepted++;
    const server = tcpConnect({ host, port: targetPort, allowHalfOpen: true });
    client.setNoDelay(true);
    server.setNoDelay(true);
    const up: Lane = { to: server, queue: [], running: undefined };
    const down: Lane = { to: client, queue: [], running: undefined };
    const closed = Promise.all([
      new Promise((resolve) => client.once('close', resolve)),
      new Promise((resolve) => server.once('close', resolve)),
    ]).then(() => {
      pairs.delete(pair);
    });
    const pair: Pair = { client, server, lanes: [up, down], closed };
    pairs.add(pair);
    client.on('data', (data: Buffer) => enqueue(up, data));
    server.on('data', (data: Buffer) => enqueue(down, data));
    // A half-close travels like the bytes before it (held while paused, delayed with them).
    client.on('end', () => enqueue(up, null));
    server.on('end', () => enqueue(down, null));
    client.on('error', (error: NodeJS.ErrnoException) => fail(server, error.code === 'ECONNRESET'));
    // The target refusing or resetting reaches the client as a reset.
    server.on('error', () => fail(client, true));
    // Closed without an error after both ends: the other side closes once its lane delivered the end.
    client.on('close', (hadError) => {
      if (hadError) fail(server, false);
    });
    server.on('close', (hadError) => {
      if (hadError) fail(client, true);
    });
  };

  let listener: Server | undefined;
  const listen = (port: number): Promise<Server> =>
    new Promise((resolve, reject) => {
      const server = createServer({ allowHalfOpen: true }, accept);
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve(server);
      });
    });
  /** Stop listening now; the server's own 'close' waits for its connections, which we track ourselves. */
  const unlisten = async (): Promise<void> => {
    if (!listener) return;
    listener.close();
    listener = undefined;
    // The listening socket is closed on the next turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
  };

  listener = await listen(0);
  const { port } = listener.address() as { port: number };

  return {
    host: '127.0.0.1',
    port,
    url(target) {
      if (target === undefined) return `http://127.0.0.1:${port}`;
      const url = new URL(target);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.href;
    },
    pause() {
      paused = true;
    },
    async resume() {
      paused = false;
      await Promise.all([...pairs].flatMap((pair) => pair.lanes.map(pump)));
    },
    delay(ms) {
      if (!Number.isFinite(ms) || ms < 0)
        throw new RangeError(`delay must be a number of ms >= 0, got ${ms}`);
      delayMs = ms;
    },
    async resetAll() {
      const open = [...pairs];
      for (const { client, server } of open) {
        fail(client, true);
        fail(server, false);
      }
      await Promise.all(open.map((pair) => pair.closed));
    },
    dropNew(on) {
      dropping = on;
    },
    async refuse(on) {
      if (on) await unlisten();
      else listener ??= await listen(port);
    },
    get connections() {
      return pairs.size;
    },
    get accepted() {
      return accepted;
    },
    async close() {
      await unlisten();
      const open = [...pairs];
      for (const { client, server } of open) {
        fail(client, false);
        fail(server, false);
      }
      await Promise.all(open.map((pair) => pair.closed));
    },
  };
}
