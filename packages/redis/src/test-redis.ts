/**
 * Test helpers: connections to the real Redis at REDIS_URL that fail loudly, never skip, when the
 * server is not there, and a cleanup that deletes the keys a test created.
 */
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import type { RedisCommands } from './redis-commands.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const CONNECT_TIMEOUT_MS = 3000;

function unreachable(error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(
    `Redis is not reachable at ${REDIS_URL} (${reason}). These tests need a real server: start one ` +
      '(e.g. `redis-server` or `docker run -p 6379:6379 redis:7`) or point REDIS_URL at one.',
    { cause: error },
  );
}

/** A connected ioredis client that does not reconnect: a lost server fails the test at once. */
export async function connectIoredis(url = REDIS_URL): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  // Without a listener, ioredis reports connection errors as unhandled 'error' events. The event
  // carries the cause (ECONNREFUSED); connect() itself rejects with a bare "Connection is closed".
  let cause: unknown;
  client.on('error', (error: unknown) => {
    cause ??= error;
  });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw unreachable(cause ?? error);
  }
  return client;
}

export type NodeRedis = ReturnType<typeof createClient>;

/** A connected node-redis client that does not reconnect. */
export async function connectNodeRedis(options: { RESP?: 2 | 3; url?: string } = {}): Promise<NodeRedis> {
  const client = createClient({
    url: REDIS_URL,
    ...options,
    socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: false },
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    client.destroy();
    throw unreachable(error);
  }
  return client as NodeRedis;
}

/** Delete every key under `prefix` (SCAN, not KEYS: never block a shared server). */
export async function deleteKeys(client: Redis, prefix: string): Promise<void> {
  if (!/^[\w:.-]+$/.test(prefix)) throw new Error(`refusing to delete by a pattern-like prefix: ${prefix}`);
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== '0');
}

/** A `RedisCommands` that records the name of every command sent through it. */
export function counting(inner: RedisCommands): RedisCommands & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    send(command) {
      sent.push(String(command.args[0]));
      return inner.send(command);
    },
  };
}
