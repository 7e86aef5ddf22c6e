import { CACHE_PRESETS, type CachePolicy } from './cache-policy.ts';
import { OncelyError } from './errors.ts';
import type { OncelyEvent } from './events.ts';
import type { Store } from './store.ts';
import { HOUR, MINUTE, SECOND } from './time.ts';

/** Options of `createOncely`. Every default lives in `DEFAULTS`. */
export interface OncelyOptions {
  /** Where records live: `memoryStore()`, `sqliteStore(...)`, `redisStore(...)`, `postgresStore(...)`. */
  store: Store;
  /** How long a completed key is kept for replay, counted from completion. @default 86_400_000 (24 h) */
  ttlMs?: number;
  /**
   * How long an owner holds a key without renewing it. The engine renews every `leaseMs / 3` while the
   * work runs, so only a crashed or stalled owner lets it lapse; then a retry may take the key over.
   * @default 30_000
   */
  leaseMs?: number;
  /** A duplicate that arrives while the first is running: answer 409 at once, or wait for the outcome. @default 'reject' */
  concurrency?: 'reject' | 'wait';
  /** With `concurrency: 'wait'`, how long to wait for the first request before answering 409. @default 10_000 */
  maxWaitMs?: number;
  /**
   * With `concurrency: 'wait'`, how soon the store is first asked whether the first request has
   * finished. The waiters of one key in one process share one watcher, which asks less often as the
   * wait goes on (doubling up to `waitPollMaxMs`); a completion in this process wakes them at once.
   * @default 50
   */
  waitPollMs?: number;
  /** With `concurrency: 'wait'`, the longest interval between two polls of one key. @default 500 */
  waitPollMaxMs?: number;
  /**
   * The longest the engine waits for any one store call. An acquire gets at most half the lease
   * (`min(storeTimeoutMs, leaseMs / 2)`), so a new owner always starts with most of its lease left;
   * an acquire that did not answer in time is a 503, and its record, should it land later, is freed.
   * @default 5_000
   */
  storeTimeoutMs?: number;
  /**
   * The longest one execution may hold its key. The lease frees the key of a dead process; this
   * frees the key of a live one whose work never settles. Past it the work's `signal` aborts with
   * `ERR_ONCELY_EXECUTION_TIMEOUT`, renewals stop and the key frees when the lease lapses; a late
   * result is kept only while no retry has taken the key over. Make it longer than any legitimate run: work it cuts short may run again on
   * a retry. The default is Node's own `server.requestTimeout`, past which a Node server has already
   * dropped the request. 0 turns the bound off. Per call: `begin({ maxExecutionMs })`.
   * @default 300_000 (5 min)
   */
  maxExecutionMs?: number;
  /** Which outcomes are kept for replay; the others release the key. @default 'success-only' */
  cache?: CachePolicy;
  /** When the store is unreachable at acquire, run the work unprotected instead of answering 503. @default false */
  failOpen?: boolean;
  /** Responses with a larger body are recorded as done without the body (a retry gets a 409). @default 1_048_576 */
  maxResponseBytes?: number;
  /** Seconds sent as `Retry-After` with 409 in-progress and 503 store-unavailable answers. @default 1 */
  retryAfterSeconds?: number;
  /** Time source, epoch ms. @default Date.now */
  clock?: () => number;
  /** Called synchronously for every decision and store failure; exceptions it throws are ignored. @default none */
  onEvent?: ((event: OncelyEvent) => void) | undefined;
}

/** Every default of `createOncely`, in one place. */
export const DEFAULTS = Object.freeze({
  ttlMs: 24 * HOUR,
  leaseMs: 30 * SECOND,
  concurrency: 'reject',
  maxWaitMs: 10 * SECOND,
  waitPollMs: 50,
  waitPollMaxMs: 500,
  storeTimeoutMs: 5 * SECOND,
  maxExecutionMs: 5 * MINUTE,
  cache: 'success-only',
  failOpen: false,
  maxResponseBytes: 1024 * 1024,
  retryAfterSeconds: 1,
  clock: Date.now,
} as const satisfies Omit<Required<OncelyOptions>, 'store' | 'onEvent'>);

export type ResolvedOptions = Required<Omit<OncelyOptions, 'onEvent'>> & Pick<OncelyOptions, 'onEvent'>;

const KNOWN = new Set<string>(['store', 'onEvent', ...Object.keys(DEFAULTS)]);

function invalid(detail: string): never {
  throw new OncelyError('ERR_ONCELY_INVALID_OPTION', detail);
}

function integerAtLeast(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    invalid(`${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}

/** Merge with `DEFAULTS` and reject unknown or invalid options, so a typo fails at start-up, not in production. */
export function resolveOptions(options: OncelyOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') invalid('createOncely expects an options object');
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) invalid(`unknown option "${name}"`);
  }
  const merged = { ...DEFAULTS, ...stripUndefined(options) } as ResolvedOptions;
  const { store } = merged;
  for (const method of ['acquire', 'complete', 'extend', 'release', 'get', 'close'] as const) {
    if (typeof store?.[method] !== 'function') invalid(`store must implement ${method}()`);
  }
  integerAtLeast('leaseMs', merged.leaseMs, 30);
  integerAtLeast('ttlMs', merged.ttlMs, 1);
  if (merged.ttlMs <= merged.leaseMs) invalid('ttlMs must be longer than leaseMs');
  integerAtLeast('maxWaitMs', merged.maxWaitMs, 0);
  integerAtLeast('waitPollMs', merged.waitPollMs, 1);
  integerAtLeast('waitPollMaxMs', merged.waitPollMaxMs, 1);
  integerAtLeast('storeTimeoutMs', merged.storeTimeoutMs, 1);
  integerAtLeast('maxExecutionMs', merged.maxExecutionMs, 0);
  integerAtLeast('maxResponseBytes', merged.maxResponseBytes, 0);
  integerAtLeast('retryAfterSeconds', merged.retryAfterSeconds, 0);
  if (merged.concurrency !== 'reject' && merged.concurrency !== 'wait') {
    invalid(`concurrency must be 'reject' or 'wait', got ${String(merged.concurrency)}`);
  }
  if (typeof merged.cache !== 'function' && !CACHE_PRESETS.includes(merged.cache)) {
    invalid(`cache must be one of ${CACHE_PRESETS.join(', ')} or a function, got ${String(merged.cache)}`);
  }
  if (typeof merged.failOpen !== 'boolean') invalid('failOpen must be a boolean');
  if (typeof merged.clock !== 'function') invalid('clock must be a function returning epoch ms');
  if (merged.onEvent !== undefined && typeof merged.onEvent !== 'function')
    invalid('onEvent must be a function');
  return merged;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
