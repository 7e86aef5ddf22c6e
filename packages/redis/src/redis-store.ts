import type {
  AcquireInput,
  AcquireResult,
  CompleteInput,
  ExtendInput,
  GetInput,
  IdempotencyRecord,
  ListInput,
  ListResult,
  PurgeExpiredInput,
  RecordCache,
  RecordSummary,
  ReleaseInput,
  Store,
  StoredResponse,
} from '@oncely/core';
import { OncelyError } from '@oncely/core';
import {
  ACQUIRE,
  COMPLETE,
  EXTEND,
  FIELDS,
  type LuaScript,
  PURGE_EXPIRED,
  PUT,
  RELEASE,
  SUMMARY,
} from './lua-scripts.ts';
import { type RedisClient, type RedisCommands, type RedisNode, toRedisCommands } from './redis-commands.ts';
import { type RedisSubscriber, toRedisSubscriber } from './redis-subscriber.ts';

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
  /**
   * A connection of its own in subscriber mode (`redis.duplicate()`), for waiters: with it, a
   * request waiting for a duplicate (`concurrency: 'wait'`) hears at once that the record was
   * completed or released in any process, instead of at its next poll. Every store publishes those
   * changes on `<prefix>done`, with or without one. The store never closes it.
   * @default none: waiters poll
   */
  subscriber?: unknown;
}

/** A Redis store is both a `Store` (one that can be listed) and the `RecordCache` of a `tieredStore`. */
export type RedisStore = Store &
  RecordCache & {
    /** One page of this prefix's live records, SCAN by SCAN (every master of a cluster). */
    list(input: ListInput): Promise<ListResult>;
    /** Delete this prefix's records the engine's `now` calls expired; usually 0 (Redis expires them). */
    purgeExpired(input: PurgeExpiredInput): Promise<number>;
  };

/**
 * Every default of `redisStore()`, in one place.
 * @example
 * redisStore({ client, prefix: `${REDIS_DEFAULTS.prefix}billing:` });
 */
export const REDIS_DEFAULTS = Object.freeze({
  prefix: 'oncely:',
});

const OPTION_NAMES: ReadonlySet<string> = new Set<keyof RedisStoreOptions>([
  'client',
  'prefix',
  'subscriber',
]);
// Keys SCAN looks at per step (its COUNT hint): enough that a listing of a big keyspace takes few
// round trips, few enough that one step never keeps the server busy for long.
const SCAN_COUNT = '250';

/**
 * The Redis, Valkey and Redis Cluster store: every step is one Lua script (EVALSHA, falling back to
 * EVAL when the server lost its script cache), one round trip; bodies are stored as raw bytes; Redis
 * expires each record at its retention end. Bring your own connected client; the package has no
 * dependency on either client library.
 * @example
 * const oncely = createOncely({ store: redisStore({ client: new Redis(url) }) });
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  const { commands, prefix, subscriber } = validate(options);
  let closed = false;
  const watchers = changeWatchers(prefix, subscriber);

  // `{id}` is a hash tag: Redis Cluster places the key by the id alone, whatever the prefix, so a
  // record (and any key added for it later) lives in one slot, and records spread over every node.
  const keyOf = (id: string): string => `${prefix}{${id}}`;

  // Only this store's records: `<prefix>{<id>}`. A prefix is a literal, so its glob characters are
  // escaped; it has no `{`, so another store's prefix that merely starts with this one never matches.
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}{*}`;

  // SCAN walks the keys of one node. On a cluster that is one master each, in address order, so a
  // cursor can name the master it stopped at (the ones before it are done); else the one server.
  const scanned = async (): Promise<RedisNode[]> => {
    const masters = await commands.masters?.();
    if (masters === undefined) return [{ address: '', commands }];
    return [...masters].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  };

  /** One SCAN step on one node: the next SCAN cursor, and the ids of the records it found. */
  const scan = async (node: RedisCommands, cursor: string): Promise<[string, string[]]> => {
    if (closed) throw new Error(`redisStore is closed (prefix "${prefix}")`);
    const reply = await node.send({
      args: ['SCAN', cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT],
      key: '',
    });
    if (!Array.isArray(reply) || !Array.isArray(reply[1])) throw unexpected('scan', reply);
    const ids = new Set((reply[1] as unknown[]).map((key) => text(key).slice(prefix.length + 1, -1)));
    return [text(reply[0]), [...ids]];
  };

  const summarize = async (id: string): Promise<RecordSummary | null> => {
    const reply = await evaluate(SUMMARY, id, []);
    if (reply === null || reply === undefined) return null;
    if (!Array.isArray(reply)) throw unexpected('list', reply);
    const state = text(reply[0]);
    if (state !== 'in_progress' && state !== 'completed') throw unexpected('list', reply);
    const status = reply[3] === null || reply[3] === undefined ? null : Number(text(reply[3]));
    return {
      id,
      state,
      leaseUntil: Number(text(reply[1])),
      expiresAt: Number(text(reply[2])),
      status,
      bodyBytes: status === null ? null : (integer(reply[4]) ?? 0),
    };
  };

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
    ...(watchers ? { watch: watchers.watch } : {}),

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

    // SCAN's cursor cannot stop inside one of its steps, and a step returns any number of keys. So a
    // page that fills up mid-step keeps the step's unlisted ids in its cursor, with the master and the
    // SCAN cursor after the step, and the next page reads those ids afresh before it goes on. Never
    // running a step twice keeps SCAN's own promise: every key that exists through the whole walk,
    // once; twice only if the keyspace shrinks meanwhile. A failover while paging may skip or repeat
    // the records of the failed master.
    async list(input: ListInput): Promise<ListResult> {
      const limit = pageLimit(input.limit);
      const from = input.cursor === undefined ? undefined : fromCursor(input.cursor);
      const records: RecordSummary[] = [];
      // Lists the live records of `ids` until the page is full; resolves with the ids left then.
      const take = async (ids: readonly string[]): Promise<string[] | undefined> => {
        const found = await Promise.all(ids.map(summarize));
        for (const [i, summary] of found.entries()) {
          if (summary === null || summary.expiresAt <= input.now) continue;
          if (records.length === limit) return ids.slice(i);
          records.push(summary);
        }
        return undefined;
      };
      for (const node of await scanned()) {
        // Masters before the cursor's are done (and one gone since, failed over, with them).
        if (from !== undefined && node.address < from.node) continue;
        let cursor = '0';
        if (from !== undefined && node.address === from.node) {
          const left = await take(from.pending);
          if (left) return { records, cursor: toCursor({ ...from, pending: left }) };
          if (from.scan === '0') continue;
          cursor = from.scan;
        }
        do {
          const [next, ids] = await scan(node.commands, cursor);
          const left = await take(ids);
          if (left) return { records, cursor: toCursor({ node: node.address, scan: next, pending: left }) };
          cursor = next;
        } while (cursor !== '0');
      }
      return { records };
    },

    // Redis drops each record itself at its retention end (PEXPIRE), so a purge usually finds
    // nothing and resolves with 0. It deletes what the engine's clock calls expired while Redis still
    // holds it: records whose TTL and the engine's clock disagree.
    async purgeExpired(input: PurgeExpiredInput): Promise<number> {
      const limit = input.limit === undefined ? Number.POSITIVE_INFINITY : pageLimit(input.limit);
      const now = String(input.now);
      let deleted = 0;
      for (const node of await scanned()) {
        let cursor = '0';
        do {
          const [next, ids] = await scan(node.commands, cursor);
          // Sent together (the client pipelines them), never more than the deletions still allowed.
          for (let i = 0; i < ids.length && deleted < limit; ) {
            const batch = ids.slice(i, i + Math.min(limit - deleted, ids.length));
            i += batch.length;
            const replies = await Promise.all(batch.map((id) => evaluate(PURGE_EXPIRED, id, [now])));
            for (const reply of replies) if (flag('purgeExpired', reply)) deleted++;
          }
          if (deleted >= limit) return deleted;
          cursor = next;
        } while (cursor !== '0');
      }
      return deleted;
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

function pageLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`redisStore: limit must be a positive integer, got ${String(limit)}`);
  }
  return limit;
}

/**
 * Where a listing goes on: the master's address, the SCAN cursor after the last step (`'0'`: that
 * master's walk is over), and the ids of that step not listed yet.
 */
interface ListPosition {
  node: string;
  scan: string;
  pending: string[];
}

function toCursor(position: ListPosition): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

function fromCursor(cursor: string): ListPosition {
  let position: Partial<ListPosition> | undefined;
  try {
    position = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Partial<ListPosition>;
  } catch {}
  if (
    typeof position?.node !== 'string' ||
    typeof position.scan !== 'string' ||
    !Array.isArray(position.pending) ||
    !position.pending.every((id) => typeof id === 'string')
  ) {
    throw new RangeError(`redisStore: "${cursor}" is not a cursor returned by list`);
  }
  return { node: position.node, scan: position.scan, pending: position.pending };
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
  subscriber: RedisSubscriber | undefined;
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
  let subscriber: RedisSubscriber | undefined;
  if (options.subscriber !== undefined) {
    subscriber = toRedisSubscriber(options.subscriber);
    if (subscriber === undefined) {
      throw invalid('"subscriber" must be an ioredis or node-redis client of its own (client.duplicate())');
    }
  }
  return { commands, prefix, subscriber };
}

/**
 * `watch` over the store's one channel: one subscription however many keys are watched, messages
 * dispatched by record id to this process's watchers. Subscribing is lazy (at the first watch), and
 * a message lost while the connection is down only delays a waiter until its next poll.
 */
function changeWatchers(prefix: string, subscriber: RedisSubscriber | undefined) {
  if (subscriber === undefined) return undefined;
  const channel = `${prefix}done`;
  const byId = new Map<string, Set<() => void>>();
  let subscribed = false;
  const subscribe = (): void => {
    if (subscribed) return;
    subscribed = true;
    subscriber.subscribe(channel, onMessage).catch(() => {
      subscribed = false; // polling covers it; the next watch tries again
    });
  };
  const onMessage = (key: string): void => {
    // `<prefix>{<id>}`
    const id = key.slice(prefix.length + 1, -1);
    for (const onChange of byId.get(id) ?? []) onChange();
  };
  return {
    watch({ id }: { id: string }, onChange: () => void): () => void {
      subscribe();
      let set = byId.get(id);
      if (!set) {
        set = new Set();
        byId.set(id, set);
      }
      set.add(onChange);
      return () => {
        set.delete(onChange);
        if (set.size === 0) byId.delete(id);
      };
    },
  };
}

function invalid(detail: string): OncelyError {
  return new OncelyError('ERR_ONCELY_INVALID_OPTION', `redisStore: ${detail}`);
}
