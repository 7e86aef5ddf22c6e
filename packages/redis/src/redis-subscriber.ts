/**
 * The optional subscriber connection of a Redis store, for `watch`: the waiters of a running request
 * (`concurrency: 'wait'`) in any process hear of its completion at once, instead of at their next
 * poll. A connection in subscriber mode can run no other command, so it is a client of its own:
 * `redis.duplicate()` (ioredis) or `await client.duplicate().connect()` (node-redis).
 */

/** What the store needs of a subscriber connection. */
export interface RedisSubscriber {
  /** Subscribe to `channel`; `onMessage` gets each message's text. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
}

interface IoredisLike {
  status: string;
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  off(event: 'message', listener: (channel: string, message: string) => void): unknown;
}

interface NodeRedisLike {
  isOpen: boolean;
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
}

/** An ioredis or node-redis client (connected, used for nothing else) as a `RedisSubscriber`. */
export function toRedisSubscriber(client: unknown): RedisSubscriber | undefined {
  if (typeof client !== 'object' || client === null) return undefined;
  const candidate = client as Partial<IoredisLike & NodeRedisLike & RedisSubscriber>;
  if (typeof candidate.subscribe !== 'function' || typeof candidate.unsubscribe !== 'function')
    return undefined;
  if (typeof candidate.isOpen === 'boolean') {
    const redis = client as NodeRedisLike;
    return {
      subscribe: async (channel, onMessage) => {
        await redis.subscribe(channel, (message) => onMessage(message));
      },
      unsubscribe: async (channel) => {
        await redis.unsubscribe(channel);
      },
    };
  }
  if (typeof candidate.status === 'string' && typeof candidate.on === 'function') {
    const redis = client as IoredisLike;
    const listeners = new Map<string, (channel: string, message: string) => void>();
    return {
      subscribe: async (channel, onMessage) => {
        const listener = (from: string, message: string): void => {
          if (from === channel) onMessage(message);
        };
        listeners.set(channel, listener);
        redis.on('message', listener);
        try {
          await redis.subscribe(channel);
        } catch (error) {
          // Not subscribed (a NOPERM on the channel, a lost connection): no listener stays behind.
          redis.off('message', listener);
          listeners.delete(channel);
          throw error;
        }
      },
      unsubscribe: async (channel) => {
        const listener = listeners.get(channel);
        if (listener) redis.off('message', listener);
        listeners.delete(channel);
        await redis.unsubscribe(channel);
      },
    };
  }
  // Already a RedisSubscriber.
  return client as RedisSubscriber;
}
