/**
 * The one thing the store needs from a Redis client: send a command, get the raw reply back. The
 * store depends on no client library; the two shims below adapt ioredis and node-redis in a few lines,
 * and anything else (a tracing wrapper, another client) can implement `RedisCommands` itself.
 */

/** One command for `RedisCommands.send`. */
export interface RedisCommand {
  /** The command name and its arguments, e.g. `['EVALSHA', sha, '1', key, token]`. Binary arguments are bytes. */
  args: ReadonlyArray<string | Uint8Array>;
  /**
   * The key the command reads or writes: a cluster client sends the command to the node serving its
   * slot. Empty for a command that names no key (SCAN), which goes to whichever node the client picks.
   */
  key: string;
}

/**
 * A connected Redis (or Valkey, or Redis Cluster) connection, reduced to one method.
 *
 * `send` resolves with the server's reply: bulk strings as bytes (`Buffer` or `Uint8Array`, never a
 * decoded string: response bodies are binary), integers as numbers, arrays as arrays, nil as `null`.
 * It rejects with the server's error for an error reply, with the message starting with the error
 * code as Redis sends it (`NOSCRIPT No matching script...`), and with any connection failure.
 * @example
 * const commands: RedisCommands = { send: ({ args }) => myClient.raw(args, { returnBuffers: true }) };
 */
export interface RedisCommands {
  send(command: RedisCommand): Promise<unknown>;
  /**
   * Optional, for a cluster: each master as a `RedisCommands` of its own that sends to that node only,
   * named by its address. SCAN walks one node's keys, so `list` and `purgeExpired` walk every master
   * through these; without `masters` the client is taken for one server. `fromIoredis` and
   * `fromNodeRedis` provide it for an ioredis `Cluster` and a node-redis `createCluster()`.
   */
  masters?(): Promise<RedisNode[]>;
}

/** One master of a cluster, for `RedisCommands.masters`. */
export interface RedisNode {
  /** `host:port`, stable across topology refreshes: a listing cursor names the node by it. */
  address: string;
  commands: RedisCommands;
}

/** What `fromIoredis` needs of an ioredis `Redis` or `Cluster`: `callBuffer`, which keeps bulk replies as Buffers. */
export interface IoredisClient {
  callBuffer(command: string, ...args: Array<string | Buffer | number>): Promise<unknown>;
  /** A `Cluster`'s nodes (absent on a `Redis`): `list` and `purgeExpired` SCAN every master. */
  nodes?(role: 'master'): Array<IoredisClient & { options: { host?: string; port?: number } }>;
}

/** node-redis command options: the store sets only `typeMapping`. */
export interface NodeRedisCommandOptions {
  typeMapping?: Record<number, unknown>;
}

/** What `fromNodeRedis` needs of a node-redis client or client pool (`createClient()`, `createClientPool()`). */
export interface NodeRedisClient {
  sendCommand(args: Array<string | Buffer>, options?: NodeRedisCommandOptions): Promise<unknown>;
}

/** What `fromNodeRedis` needs of a node-redis cluster (`createCluster()`): `sendCommand` routed by its first key. */
export interface NodeRedisCluster {
  sendCommand(
    firstKey: string | Buffer | undefined,
    isReadonly: boolean | undefined,
    args: Array<string | Buffer>,
    options?: NodeRedisCommandOptions,
  ): Promise<unknown>;
  getSlotMaster(slot: number): unknown;
  /** The masters and a client of each (node-redis v5 and later): `list` and `purgeExpired` SCAN every one. */
  readonly masters?: ReadonlyArray<{ address: string }>;
  nodeClient?(node: { address: string }): Promise<NodeRedisClient>;
}

/** Every client `redisStore({ client })` accepts. */
export type RedisClient = RedisCommands | IoredisClient | NodeRedisClient | NodeRedisCluster;

/**
 * Adapt an ioredis `Redis` or `Cluster`. ioredis finds the keys of `EVALSHA` itself (its numkeys
 * argument), so a `Cluster` routes each command to the right node and follows MOVED and ASK on its own.
 * @example
 * const store = redisStore({ client: fromIoredis(new Redis(url)) });
 */
export function fromIoredis(client: IoredisClient): RedisCommands {
  const commands: RedisCommands = {
    send({ args }) {
      const [name, ...rest] = args.map(toArgument);
      return client.callBuffer(String(name), ...rest);
    },
  };
  const { nodes } = client;
  if (typeof nodes === 'function') {
    commands.masters = async () =>
      nodes.call(client, 'master').map((node) => ({
        address: `${node.options.host ?? '127.0.0.1'}:${node.options.port ?? 6379}`,
        commands: fromIoredis(node),
      }));
  }
  return commands;
}

// node-redis decodes bulk strings (RESP type '$', its RESP_TYPES.BLOB_STRING) to JS strings unless told
// otherwise; mapping them to Buffer keeps bodies byte-exact. Passed with every command, so a client
// created with another `typeMapping` still answers the store in bytes, and the client's own commands
// are left as they were. The constant is spelled out to keep node-redis out of the runtime imports.
const RESP_BLOB_STRING = 36;
const BUFFER_REPLIES: NodeRedisCommandOptions = Object.freeze({
  typeMapping: Object.freeze({ [RESP_BLOB_STRING]: Buffer }),
});

/**
 * Adapt a node-redis (v5, v6) client, client pool or cluster. A cluster is recognised by its
 * `getSlotMaster` method, and gets the command's key as `firstKey`, which is how it picks the node.
 * @example
 * const store = redisStore({ client: fromNodeRedis(await createClient({ url }).connect()) });
 */
export function fromNodeRedis(client: NodeRedisClient | NodeRedisCluster): RedisCommands {
  if (isNodeRedisCluster(client)) {
    const commands: RedisCommands = {
      send: ({ args, key }) => client.sendCommand(key, false, args.map(toArgument), BUFFER_REPLIES),
    };
    const { nodeClient } = client;
    if (client.masters !== undefined && typeof nodeClient === 'function') {
      commands.masters = () =>
        Promise.all(
          (client.masters ?? []).map(async (node) => ({
            address: node.address,
            commands: fromNodeRedis(await nodeClient.call(client, node)),
          })),
        );
    }
    return commands;
  }
  return { send: ({ args }) => client.sendCommand(args.map(toArgument), BUFFER_REPLIES) };
}

/**
 * The `RedisCommands` of whatever `redisStore({ client })` was given, or `undefined` when it is none
 * of the accepted kinds. Checked in this order because ioredis also has a `sendCommand` (of its own,
 * different, signature), and a `RedisCommands` may wrap either library.
 */
export function toRedisCommands(client: unknown): RedisCommands | undefined {
  if (typeof client !== 'object' || client === null) return undefined;
  const candidate = client as Record<string, unknown>;
  if (typeof candidate.send === 'function') return client as RedisCommands;
  if (typeof candidate.callBuffer === 'function') return fromIoredis(client as IoredisClient);
  // A node-redis Sentinel's sendCommand takes (isReadonly, args, options): not handled here, see docs.
  if (typeof candidate.sendCommand === 'function' && typeof candidate.getSentinelNode !== 'function') {
    return fromNodeRedis(client as NodeRedisClient | NodeRedisCluster);
  }
  return undefined;
}

function isNodeRedisCluster(client: NodeRedisClient | NodeRedisCluster): client is NodeRedisCluster {
  return typeof (client as Partial<NodeRedisCluster>).getSlotMaster === 'function';
}

// Both libraries take strings and Buffers only: ioredis would send a plain Uint8Array as "1,2,3", and
// node-redis refuses it. A Buffer view over the same memory costs no copy.
function toArgument(arg: string | Uint8Array): string | Buffer {
  if (typeof arg === 'string' || Buffer.isBuffer(arg)) return arg;
  return Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength);
}
