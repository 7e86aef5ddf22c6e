import type {
  AcquireInput,
  AcquireResult,
  CompleteInput,
  ExtendInput,
  GetInput,
  IdempotencyRecord,
  RecordCache,
  ReleaseInput,
  Store,
  StoredResponse,
} from '@oncely/core';
import { OncelyError } from '@oncely/core';
import { ACQUIRE, COMPLETE, EXTEND, FIELDS, type LuaScript, PUT, RELEASE } from './lua-scripts.ts';
import { type RedisClient, type RedisCommands, toRedisCommands } from './redis-commands.ts';

export interface RedisStoreOptions {
  /**
   * A connected client, which the store uses and never closes: an ioredis `Redis` or `Cluster`, a
   * node-redis client, client pool or cluster (each adapted by `fromIoredis` / `fromNodeRedis`), or
   * any `RedisCommands`.
   */
  client: RedisClient;
  /**
   * Starts every key name; the store's namespace. Stores with different prefixes never see each
   * other's records on one server. Must not contain `{` or `}`: the hash tag is the record id.
   * @default 'oncely:'
   */
  prefix?: string;
}

/** A Redis store is both a `Store` and the `RecordCache` of a `tieredStore`. */
export type RedisStore = Store & RecordCache;

/**
 * Every default of `redisStore()`, in one place.
 * @example
 * redisStore({ client, prefix: `${REDIS_DEFAULTS.prefix}billing:` });
 */
export const REDIS_DEFAULTS = Object.freeze({
  prefix: 'oncely:',
});

const OPTION_NAMES: ReadonlySet<string> = new Set<keyof RedisStoreOptions>(['client', 'prefix']);

/**
 * The Redis, Valkey and Redis Cluster store: every step is one Lua script (EVALSHA, falling back to
 * EVAL when the server lost its script cache), one round trip; bodies are stored as raw bytes; Redis
 * expires each record at its retention end. Bring your own connected client; the package has no
 * dependency on either client library.
 * @example
 * const oncely = createOncely({ store: redisStore({ client: new Redis(url) }) });
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  const { commands, prefix } = validate(options);
  let closed = false;

  // `{id}` is a hash tag: Redis Cluster places the key by the id alone, whatever the prefix, so a
  // record (and any key added for it later) lives in one slot, and records spread over every node.
  const keyOf = (id: string): string => `${prefix}{${id}}`;

  const evaluate = async (
    script: LuaScript,
    id: string,
    argv: ReadonlyArray<string | Uint8Array>,
  ): Promise<unknown> => {
    if (closed) throw new Error(`redisStore is closed (prefix "${prefix}")`);
    const key = keyOf(id);
    const tail = ['1', key, ...argv];
    try {
      return await commands.send({ args: ['EVALSHA', script.sha, ...tail], key });
    } catch (error) {
      if (!isNoScript(error)) throw error;
      // The node lost its script cache (restart, failover to a replica, SCRIPT FLUSH, a node that
      // joined a cluster). The script did not run, so running it with EVAL instead is safe; EVAL
      // also caches it again, and the next step is back to one EVALSHA.
      return commands.send({ args: ['EVAL', script.source, ...tail], key });
    }
  };

  return {
    name: 'redis',

    async acquire(input: AcquireInput): Promise<AcquireResult> {
      const reply = await evaluate(ACQUIRE, input.id, [
        input.fingerprint,
        input.token,
        String(input.now),
        String(input.leaseUntil),
        String(input.expiresAt),
        ttl(input.expiresAt, input.now),
      ]);
      if (Array.isArray(reply)) return { acquired: false, record: toRecord(input.id, reply) };
      const code = integer(reply);
      if (code !== 1 && code !== 2) throw unexpected('acquire', reply);
      return {
        acquired: true,
        takeover: code === 2,
        record: {
          id: input.id,
          state: 'in_progress',
          fingerprint: input.fingerprint,
          token: input.token,
          leaseUntil: input.leaseUntil,
          expiresAt: input.expiresAt,
          response: null,
        },
      };
    },

    async complete(input: CompleteInput): Promise<boolean> {
      const reply = await evaluate(COMPLETE, input.id, [
        input.token,
        String(input.expiresAt),
        ttl(input.expiresAt, input.now),
        ...responseArgs(input.response),
      ]);
      return flag('complete', reply);
    },

    async extend(input: ExtendInput): Promise<boolean> {
      const reply = await evaluate(EXTEND, input.id, [input.token, String(input.leaseUntil)]);
      return flag('extend', reply);
    },

    async release(input: ReleaseInput): Promise<boolean> {
      const reply = await evaluate(RELEASE, input.id, [input.token]);
      return flag('release', reply);
    },

    async get(input: GetInput): Promise<IdempotencyRecord | null> {
      if (closed) throw new Error(`redisStore is closed (prefix "${prefix}")`);
      // A single HMGET is already atomic and one round trip, so reading needs no script (and no
      // script cache). Retention is checked here, on the engine's clock, like everywhere else.
      const key = keyOf(input.id);
      const reply = await commands.send({ args: ['HMGET', key, ...FIELDS], key });
      if (!Array.isArray(reply)) throw unexpected('get', reply);
      if (reply[0] === null || reply[0] === undefined) return null;
      const record = toRecord(input.id, reply);
      return record.expiresAt <= input.now ? null : record;
    },

    async put({ record, now }: { record: IdempotencyRecord; now: number }): Promise<void> {
      // An already expired record is not written; the script still deletes an older copy, so the
      // cache never holds something other than what it was last given.
      const remaining = record.expiresAt - now;
      const reply = await evaluate(PUT, record.id, [
        remaining > 0 ? ttl(record.expiresAt, now) : '0',
        record.state,
        record.fingerprint,
        record.token,
        String(record.leaseUntil),
        String(record.expiresAt),
        ...responseArgs(record.response),
      ]);
      const code = integer(reply);
      if (code !== 0 && code !== 1) throw unexpected('put', reply);
    },

    async close(): Promise<void> {
      // The client was given, not created: closing it is its owner's business.
      closed = true;
    },
  };
}

// Redis keeps the record about as long as the engine does: the TTL is the time left until expiresAt
// on the engine's clock, rounded up, and at least 1 ms (PEXPIRE with 0 or less would delete the key
// at once; a record handed over with no time left is already expired for every reader anyway).
// Checked here, before the script runs: a script failing at PEXPIRE would leave its earlier writes.
function ttl(expiresAt: number, now: number): string {
  const ms = Math.max(1, Math.ceil(expiresAt - now));
  if (!Number.isSafeInteger(ms)) {
    throw new TypeError(`redisStore: expiresAt and now must be finite epoch ms, got ${expiresAt} and ${now}`);
  }
  return String(ms);
}

function responseArgs(response: StoredResponse | null): Array<string | Uint8Array> {
  if (response === null) return [];
  return [String(response.status), JSON.stringify(response.headers), response.body];
}

/** A record from its fields in `FIELDS` order, as HMGET and the acquire script return them. */
function toRecord(id: string, fields: unknown[]): IdempotencyRecord {
  const state = text(fields[0]);
  if (state !== 'in_progress' && state !== 'completed') {
    throw new Error(
      `redisStore: the record ${id} has no valid state (${state}); was the key written by hand?`,
    );
  }
  const status = fields[5];
  return {
    id,
    state,
    fingerprint: text(fields[1]),
    token: text(fields[2]),
    leaseUntil: Number(text(fields[3])),
    expiresAt: Number(text(fields[4])),
    response:
      status === null || status === undefined
        ? null
        : {
            status: Number(text(status)),
            headers: JSON.parse(text(fields[6])) as Array<[string, string]>,
            body: bytes(fields[7]),
          },
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return utf8.decode(value);
  throw new Error(`redisStore: expected a bulk string reply, got ${describe(value)}`);
}

// A plain Uint8Array of its own: the client's Buffer may be a view into a larger socket buffer, which
// a copy lets go of, and callers compare bodies as Uint8Array. A string here means the client decoded
// the body as text and may have mangled it: refuse rather than replay wrong bytes.
function bytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  throw new Error(
    `redisStore: the body came back as ${describe(value)}, not bytes; RedisCommands.send must return bulk strings as Buffer or Uint8Array`,
  );
}

function integer(reply: unknown): number | undefined {
  if (typeof reply === 'number') return reply;
  if (typeof reply === 'bigint') return Number(reply);
  return undefined;
}

function flag(step: string, reply: unknown): boolean {
  const code = integer(reply);
  if (code !== 0 && code !== 1) throw unexpected(step, reply);
  return code === 1;
}

function unexpected(step: string, reply: unknown): Error {
  return new Error(`redisStore: unexpected reply to ${step}: ${describe(reply)}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  return typeof value;
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

interface Config {
  commands: RedisCommands;
  prefix: string;
}

function validate(options: RedisStoreOptions): Config {
  if (typeof options !== 'object' || options === null) {
    throw invalid('redisStore() takes an options object: redisStore({ client })');
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw invalid(`unknown option "${name}"`);
  }
  const commands = toRedisCommands(options.client);
  if (commands === undefined) {
    throw invalid(
      '"client" must be a connected ioredis Redis or Cluster, a node-redis client, pool or cluster, or a RedisCommands ({ send }); for Sentinel, use ioredis (see docs/redis.md)',
    );
  }
  const prefix = options.prefix ?? REDIS_DEFAULTS.prefix;
  if (typeof prefix !== 'string' || prefix === '') throw invalid('"prefix" must be a non-empty string');
  if (/[{}]/.test(prefix)) {
    throw invalid(
      `"prefix" must not contain "{" or "}", got "${prefix}": Redis Cluster would place every record by the prefix, on one node`,
    );
  }
  return { commands, prefix };
}

function invalid(detail: string): OncelyError {
  return new OncelyError('ERR_ONCELY_INVALID_OPTION', `redisStore: ${detail}`);
}
