import { OncelyError } from './errors.ts';
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
} from './store.ts';

export interface TieredStoreOptions {
  /** The fast store in front (Redis): holds copies of completed records for one-round-trip replays. */
  cache: RecordCache;
  /** The store of record (PostgreSQL, SQLite): every acquire, completion, renewal and release. */
  durable: Store;
  /**
   * A cache call slower than this counts as failed and the durable store answers: a cache that hangs
   * (a client queueing commands while it reconnects) must not hang requests. @default 250
   */
  cacheTimeoutMs?: number;
  /** Told about every cache failure; the request goes on against the durable store. @default none */
  onCacheError?: (error: unknown, operation: 'get' | 'put') => void;
}

/** Defaults of `tieredStore`. */
export const TIERED_DEFAULTS = { cacheTimeoutMs: 250 } as const;

const KNOWN = new Set(['cache', 'durable', 'cacheTimeoutMs', 'onCacheError']);

/**
 * Redis in front, a database behind. Acquire, completion, renewal and release go to the durable
 * store, which alone decides who owns a key; completed records are copied to the cache, so a replay
 * is one cache read and never reaches the database. A completed record does not change until its
 * retention ends (and the cache honours the same `expiresAt`), so a cached copy cannot contradict the
 * durable one. When the cache fails or is slow, requests go to the durable store instead of failing.
 * `close()` waits for cache fills in flight; close the two stores yourself after it.
 * @example
 * const store = tieredStore({ cache: redisStore({ client: redis }), durable: postgresStore({ pool }) });
 */
export function tieredStore(options: TieredStoreOptions): Store {
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) invalid(`unknown option "${name}"`);
  }
  const { cache, durable, onCacheError } = options;
  if (typeof cache?.get !== 'function' || typeof cache.put !== 'function') {
    invalid('cache must be a RecordCache (get and put), e.g. redisStore()');
  }
  if (typeof durable?.acquire !== 'function') invalid('durable must be a Store');
  const cacheTimeoutMs = options.cacheTimeoutMs ?? TIERED_DEFAULTS.cacheTimeoutMs;
  if (!Number.isInteger(cacheTimeoutMs) || cacheTimeoutMs < 1) {
    invalid('cacheTimeoutMs must be a positive integer');
  }

  // The fingerprint of each record this process owns, to build the completed copy for the cache
  // (CompleteInput does not carry it). Entries live from acquire to complete or release.
  const owned = new Map<string, string>();
  const fills = new Set<Promise<void>>();
  let closed = false;

  const report = (error: unknown, operation: 'get' | 'put'): void => {
    try {
      onCacheError?.(error, operation);
    } catch {
      // An observer must never change the outcome of a request.
    }
  };

  const withTimeout = <T>(promise: Promise<T>): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`cache ${cache.name} did not answer within ${cacheTimeoutMs} ms`)),
        cacheTimeoutMs,
      );
      (timer as { unref?: () => void }).unref?.();
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  };

  /** A completed record from the cache, or `null` on a miss, an in-progress copy or a cache failure. */
  const cached = async (input: GetInput): Promise<IdempotencyRecord | null> => {
    try {
      const record = await withTimeout(cache.get(input));
      return record?.state === 'completed' ? record : null;
    } catch (error) {
      report(error, 'get');
      return null;
    }
  };

  // Filling the cache is not on the request's critical path: the durable store already holds the
  // truth, and a miss only costs the next replay a database read. Fills are tracked so close() waits.
  const fill = (record: IdempotencyRecord, now: number): void => {
    if (closed || record.state !== 'completed') return;
    const done = withTimeout(cache.put({ record, now })).catch((error: unknown) => report(error, 'put'));
    fills.add(done);
    void done.finally(() => fills.delete(done));
  };

  const store: Store = {
    name: `tiered(${cache.name}+${durable.name})`,

    async acquire(input: AcquireInput): Promise<AcquireResult> {
      const hit = await cached({ id: input.id, now: input.now });
      if (hit) return { acquired: false, record: hit };
      const result = await durable.acquire(input);
      if (result.acquired) owned.set(ownedKey(input.id, input.token), result.record.fingerprint);
      else fill(result.record, input.now);
      return result;
    },

    async complete(input: CompleteInput): Promise<boolean> {
      const key = ownedKey(input.id, input.token);
      const fingerprint = owned.get(key);
      owned.delete(key);
      const ok = await durable.complete(input);
      if (ok && fingerprint !== undefined) {
        fill(
          {
            id: input.id,
            state: 'completed',
            fingerprint,
            token: input.token,
            leaseUntil: input.now,
            expiresAt: input.expiresAt,
            response: input.response,
          },
          input.now,
        );
      }
      return ok;
    },

    extend: (input: ExtendInput) => durable.extend(input),

    async release(input: ReleaseInput): Promise<boolean> {
      owned.delete(ownedKey(input.id, input.token));
      return durable.release(input);
    },

    async get(input: GetInput): Promise<IdempotencyRecord | null> {
      const hit = await cached(input);
      if (hit) return hit;
      const record = await durable.get(input);
      if (record) fill(record, input.now);
      return record;
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      // Like every store, close only what this one made: the cache and durable stores were given.
      while (fills.size > 0) await Promise.allSettled([...fills]);
      owned.clear();
    },
  };
  // Listing and purging are the durable store's: it holds every record, and the cache only copies
  // of completed ones, which expire with them (the cache honours the same `expiresAt`). Present only
  // when the durable store has them, so `typeof store.list` tells what this composition can do.
  if (durable.list) store.list = durable.list.bind(durable);
  if (durable.purgeExpired) store.purgeExpired = durable.purgeExpired.bind(durable);
  return store;
}

const ownedKey = (id: string, token: string): string => `${id}\u0000${token}`;

function invalid(message: string): never {
  throw new OncelyError('ERR_ONCELY_INVALID_OPTION', `tieredStore: ${message}`);
}
