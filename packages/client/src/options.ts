import { OncelyClientError } from './errors.ts';
import type { KeyFormat } from './key-header.ts';
import { sleep } from './sleep.ts';

/** The `fetch` the client sends with: the platform's, or any function of the same shape. */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** What `onRetry` is told before the client waits and sends the request again. */
export interface RetryInfo {
  /** The attempt that failed, counted from 1. */
  attempt: number;
  /** How long the client waits before the next attempt, in ms (`Retry-After` or backoff). */
  delayMs: number;
  /** The status that is retried, or `undefined` when the attempt got no response. */
  status: number | undefined;
  /** The network error or timeout of an attempt without a response. */
  error: unknown;
  /** The idempotency key, the same on every attempt (`undefined` for a request without one). */
  key: string | undefined;
  method: string;
  url: string;
}

/** Options of `createClient`. Every default lives in `CLIENT_DEFAULTS`. */
export interface ClientOptions {
  /** The fetch to send with. @default globalThis.fetch, looked up on every call */
  fetch?: FetchFunction;
  /** Retries after the first attempt: at most `retries + 1` attempts per call. @default 5 */
  retries?: number;
  /** Backoff base: the wait before retry n is random in [0, min(maxDelayMs, baseDelayMs * 2^n)). @default 250 */
  baseDelayMs?: number;
  /** Longest backoff wait (a longer `Retry-After` is still honoured, within the deadline). @default 10_000 */
  maxDelayMs?: number;
  /** Time limit of one attempt until the response headers arrive; then it counts as failed and is retried. @default 30_000 */
  timeoutMs?: number;
  /**
   * Time limit of the whole call, attempts and waits included. The client never sleeps past it: when
   * the next wait would end after it, the call ends with what it has. Keep it far below the server's
   * retention (24 h by default), so a retry never arrives after the key was forgotten.
   * @default 120_000
   */
  deadlineMs?: number;
  /** Name of the key header. @default 'Idempotency-Key' */
  keyHeader?: string;
  /** `'token'` sends `key` bare (quoted only if it must be); `'sf-string'` always sends `"key"` (RFC 9651). @default 'token' */
  keyFormat?: KeyFormat;
  /** Methods that get a generated key when the caller sent none. @default ['POST', 'PATCH'] */
  methods?: readonly string[];
  /** Called before each retry (for logs and metrics); what it throws is ignored. @default none */
  onRetry?: ((info: RetryInfo) => void) | undefined;
  /** Random source in [0, 1) for the backoff jitter. @default Math.random */
  random?: () => number;
  /** Waits between attempts; must reject with `signal.reason` when the signal aborts. @default a setTimeout sleep */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Time source for the deadline and `Retry-After` dates, epoch ms. @default Date.now */
  clock?: () => number;
}

/** Every default of `createClient`, in one place. */
export const CLIENT_DEFAULTS = Object.freeze({
  // Looked up on every call, so a fetch installed or mocked after createClient is used.
  fetch: ((input, init) => globalThis.fetch(input, init)) as FetchFunction,
  retries: 5,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  timeoutMs: 30_000,
  deadlineMs: 120_000,
  keyHeader: 'Idempotency-Key',
  keyFormat: 'token' as KeyFormat,
  methods: Object.freeze(['POST', 'PATCH']) as readonly string[],
  random: Math.random,
  sleep,
  clock: Date.now,
} satisfies Required<Omit<ClientOptions, 'onRetry'>>);

export interface ResolvedClientOptions extends Required<Omit<ClientOptions, 'onRetry' | 'methods'>> {
  onRetry: ((info: RetryInfo) => void) | undefined;
  /** Upper-cased. */
  methods: ReadonlySet<string>;
}

/** Longest delay a timer can take: setTimeout fires at once for anything above 2^31 - 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** RFC 9110 §5.6.2 token: what a header name or a method may consist of. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const KNOWN = new Set<string>(['onRetry', ...Object.keys(CLIENT_DEFAULTS)]);

function invalid(detail: string): never {
  throw new OncelyClientError('ERR_ONCELY_CLIENT_INVALID_OPTION', detail);
}

function integerIn(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    invalid(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}

/** Merge with `CLIENT_DEFAULTS` and reject unknown or invalid options, so a typo fails at start-up. */
export function resolveClientOptions(options: ClientOptions = {}): ResolvedClientOptions {
  if (options === null || typeof options !== 'object') invalid('createClient expects an options object');
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) invalid(`unknown option "${name}"`);
  }
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const merged = { ...CLIENT_DEFAULTS, onRetry: undefined, ...given } as Required<
    Omit<ClientOptions, 'onRetry'>
  > & { onRetry: ClientOptions['onRetry'] };

  integerIn('retries', merged.retries, 0, 1000);
  integerIn('baseDelayMs', merged.baseDelayMs, 0, MAX_TIMER_MS);
  integerIn('maxDelayMs', merged.maxDelayMs, merged.baseDelayMs, MAX_TIMER_MS);
  integerIn('timeoutMs', merged.timeoutMs, 1, MAX_TIMER_MS);
  integerIn('deadlineMs', merged.deadlineMs, 1, MAX_TIMER_MS);
  if (typeof merged.keyHeader !== 'string' || !TOKEN.test(merged.keyHeader)) {
    invalid('keyHeader must be a header name (an RFC 9110 token)');
  }
  if (merged.keyFormat !== 'token' && merged.keyFormat !== 'sf-string') {
    invalid(`keyFormat must be 'token' or 'sf-string', got ${String(merged.keyFormat)}`);
  }
  const methods = merged.methods as unknown;
  if (
    !Array.isArray(methods) ||
    methods.length === 0 ||
    !methods.every((m) => typeof m === 'string' && TOKEN.test(m))
  ) {
    invalid('methods must be a non-empty array of method names');
  }
  for (const name of ['fetch', 'random', 'sleep', 'clock'] as const) {
    if (typeof merged[name] !== 'function') invalid(`${name} must be a function`);
  }
  if (merged.onRetry !== undefined && typeof merged.onRetry !== 'function') {
    invalid('onRetry must be a function');
  }
  return { ...merged, methods: new Set((methods as string[]).map((m) => m.toUpperCase())) };
}
