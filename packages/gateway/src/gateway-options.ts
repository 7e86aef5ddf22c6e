/**
 * The gateway's options: what each means, its default, and the one place they are checked.
 * `resolveGatewayOptions` validates everything once, before a server exists; the CLI's config
 * (`config.ts`) checks flag values with the same rules, so `--scope-header` and `scopeHeader`
 * can never disagree on what a header name is.
 */

import type { HttpIdempotencyOptions, Store } from '@oncely/core';
import { OncelyError } from '@oncely/core';
import type { CommitResult, Outcome } from './metrics.ts';
import { type UpstreamTarget, upstreamTarget } from './upstream.ts';

/** One structured log entry. The gateway never puts a raw key, a scope value or a body in one. */
export interface GatewayLogEntry {
  level: 'info' | 'warn' | 'error';
  /** `request` (one per request the idempotency layer decided, or that failed upstream), `store_error`, `lease_lost`, `execution_timeout`, `error`. */
  msg: string;
  outcome?: Outcome;
  method?: string;
  /** The request path without its query string (a query may carry secrets). */
  path?: string;
  status?: number;
  durationMs?: number;
  /** The record id: sha256 of scope and key. Safe to log; find it with `oncely keys show`. */
  keyHash?: string;
  commit?: CommitResult;
  takeover?: boolean;
  leaseLost?: boolean;
  operation?: string;
  error?: string;
}

/** Options of `createGateway`: core's HTTP and engine options, plus the proxy's own. */
export interface GatewayOptions extends Omit<HttpIdempotencyOptions, 'required'> {
  /** Base URL of the service behind the gateway; a path is prepended to every request. */
  upstream: string | URL;
  /**
   * Header naming the tenant (an API key, an account id). Its value is hashed into the scope, so a
   * key of one tenant never replays another's response. A keyed request without it is refused with
   * `400 ERR_ONCELY_SCOPE_MISSING` (see `requireScope`).
   * @default none: every client shares one key space
   */
  scopeHeader?: string | undefined;
  /**
   * Refuse a keyed request without the scope header instead of putting it in the key space that
   * every unscoped client shares.
   * @default true when `scopeHeader` is set
   */
  requireScope?: boolean;
  /**
   * The longest one recorded request may hold its key; past it the upstream call is cut, the client
   * gets 504 and the key frees when its lease lapses. Follows `upstreamTimeoutMs`, a second past it,
   * so an upstream that goes silent meets its own timeout first (504, key released at once) and the
   * bound only ends a response that keeps trickling in.
   * @default upstreamTimeoutMs + 1_000
   */
  maxExecutionMs?: number;
  /** A covered request without a key gets 400 instead of passing through; a function decides per request. @default false */
  required?: boolean | RequiredFor;
  /** Largest recorded request body; a larger one gets 413 before the store or the upstream see it. @default 1_048_576 */
  maxBodyBytes?: number;
  /** Longest silence from the upstream (before its head or between chunks) before a 504. @default 60_000 */
  upstreamTimeoutMs?: number;
  /**
   * How long a kept-alive connection to the upstream may sit idle before the gateway closes it (or
   * sooner, when the upstream announces a shorter `Keep-Alive: timeout`). Keep it below the
   * upstream's own idle timeout: an upstream that closes an idle connection just as a request goes
   * out on it fails that request, and only a bodyless GET, HEAD or OPTIONS is then sent again.
   * @default 4_000 (below the 5 s of Node's http server, Apache and uvicorn)
   */
  upstreamIdleTimeoutMs?: number;
  /** Prefix of the gateway's own paths, `<prefix>/healthz` and `<prefix>/metrics`; '' serves them at the root. @default '/_oncely' */
  adminPrefix?: string;
  /** How long `/healthz` waits for the store before answering 503. @default 2_000 */
  healthTimeoutMs?: number;
  /** Where log entries go; the CLI prints them as JSON lines. @default none */
  log?: ((entry: GatewayLogEntry) => void) | undefined;
}

/** Whether a covered request without a key is refused, decided per request. */
export type RequiredFor = (request: { method: string; path: string }) => boolean;

/** The defaults of the gateway's own options; the engine's are in core's `DEFAULTS`, the HTTP ones in `HTTP_DEFAULTS`. */
export const GATEWAY_DEFAULTS = Object.freeze({
  scopeHeader: undefined,
  required: false,
  maxBodyBytes: 1024 * 1024,
  upstreamTimeoutMs: 60_000,
  upstreamIdleTimeoutMs: 4_000,
  adminPrefix: '/_oncely',
  healthTimeoutMs: 2_000,
});

/** The options once checked, every default applied: what the gateway's parts are built from. */
export interface ResolvedGatewayOptions {
  /** Where requests go, with its keep-alive agent (to destroy on close). */
  target: UpstreamTarget;
  /** Lower case; undefined when every client shares one key space. */
  scopeHeader: string | undefined;
  required: boolean | RequiredFor;
  maxBodyBytes: number;
  upstreamTimeoutMs: number;
  /** '' or a path such as `/_oncely`, without a trailing slash. */
  adminPrefix: string;
  healthTimeoutMs: number;
  log: (entry: GatewayLogEntry) => void;
  /** The store as given (the gateway times its calls). */
  store: Store;
  /**
   * Core's HTTP and engine options, `requireScope` and `maxExecutionMs` resolved; `store` and
   * `onEvent` are the gateway's to wrap.
   */
  http: Omit<HttpIdempotencyOptions, 'store'>;
}

/** The token grammar of RFC 9110 §5.6.2: header names and method names. */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

// The rules below are shared with the CLI's settings. Each returns the value as the gateway uses it,
// or throws a RangeError whose message the caller prefixes with the option's or the flag's name.

/** A scope header: a field name other than `Idempotency-Key`, lower-cased. */
export function scopeHeaderRule(name: string): string {
  const lower = name.toLowerCase();
  if (!TOKEN.test(lower)) throw new RangeError(`"${name}" is not a header name`);
  if (lower === 'idempotency-key') throw new RangeError('the scope cannot come from the key itself');
  return lower;
}

/** The admin prefix: '' (the root) or a path, trailing slashes dropped. */
export function adminPrefixRule(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, '');
  if (trimmed !== '' && (!trimmed.startsWith('/') || /[?#\s]/.test(trimmed))) {
    throw new RangeError(`"${prefix}" is not a path such as /_oncely`);
  }
  return trimmed;
}

/** A timeout that must run out at some point: 0 would mean never, the very thing it is there to avoid. */
export function positiveMsRule(ms: number): number {
  if (!Number.isSafeInteger(ms) || ms < 1) throw new RangeError('must be at least 1ms');
  return ms;
}

/** A size or a wait in whole units. */
export function nonNegativeIntegerRule(value: number): number {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`must be an integer >= 0, got ${value}`);
  return value;
}

const GATEWAY_KEYS = [
  'upstream',
  'scopeHeader',
  'required',
  'maxBodyBytes',
  'upstreamTimeoutMs',
  'upstreamIdleTimeoutMs',
  'adminPrefix',
  'healthTimeoutMs',
  'log',
] as const;

/** The options that have a default in `GATEWAY_DEFAULTS` and a rule above. */
type RuledOption =
  | 'maxBodyBytes'
  | 'upstreamTimeoutMs'
  | 'upstreamIdleTimeoutMs'
  | 'healthTimeoutMs'
  | 'adminPrefix';

function invalid(detail: string): never {
  throw new OncelyError('ERR_ONCELY_INVALID_OPTION', `createGateway: ${detail}`);
}

/** Apply a rule to an option, its RangeError turned into `ERR_ONCELY_INVALID_OPTION` naming the option. */
function checked<T, R>(name: string, rule: (value: T) => R, value: T): R {
  try {
    return rule(value);
  } catch (error) {
    const { message } = error as Error;
    // "upstreamTimeoutMs must be at least 1ms", but "scopeHeader: "x y" is not a header name".
    invalid(message.startsWith('must ') ? `${name} ${message}` : `${name}: ${message}`);
  }
}

/**
 * Check the gateway's options once and apply every default: an unknown or invalid one throws
 * `ERR_ONCELY_INVALID_OPTION`. Core's own options are checked by `httpIdempotency`.
 * @example
 * const resolved = resolveGatewayOptions({ upstream: 'http://127.0.0.1:3000', store });
 */
export function resolveGatewayOptions(options: GatewayOptions): ResolvedGatewayOptions {
  if (options === null || typeof options !== 'object') invalid('expects an options object');
  const rest: Record<string, unknown> = { ...options };
  for (const key of GATEWAY_KEYS) delete rest[key];
  const { store, ...engine } = rest as unknown as HttpIdempotencyOptions;
  if (store === null || typeof store !== 'object') invalid('store is required');

  const scopeHeader =
    options.scopeHeader === undefined
      ? undefined
      : checked('scopeHeader', scopeHeaderRule, options.scopeHeader);
  const required = options.required ?? GATEWAY_DEFAULTS.required;
  if (typeof required !== 'boolean' && typeof required !== 'function') {
    invalid('required must be a boolean or a function of { method, path }');
  }
  // Each with its default, through the same rule the CLI applies to the flag.
  const withDefault = <K extends RuledOption>(
    name: K,
    rule: (value: NonNullable<GatewayOptions[K]>) => NonNullable<GatewayOptions[K]>,
  ): NonNullable<GatewayOptions[K]> =>
    checked(name, rule, (options[name] ?? GATEWAY_DEFAULTS[name]) as NonNullable<GatewayOptions[K]>);
  const maxBodyBytes = withDefault('maxBodyBytes', nonNegativeIntegerRule);
  const upstreamTimeoutMs = withDefault('upstreamTimeoutMs', positiveMsRule);
  const upstreamIdleTimeoutMs = withDefault('upstreamIdleTimeoutMs', positiveMsRule);
  const healthTimeoutMs = withDefault('healthTimeoutMs', nonNegativeIntegerRule);
  const adminPrefix = withDefault('adminPrefix', adminPrefixRule);
  const log = options.log ?? ((): void => {});
  if (typeof log !== 'function') invalid('log must be a function');

  // Last: the target holds a keep-alive agent, which nothing after it may leave behind by throwing.
  let target: UpstreamTarget;
  try {
    target = upstreamTarget(options.upstream, { idleTimeoutMs: upstreamIdleTimeoutMs });
  } catch (error) {
    invalid((error as Error).message);
  }
  return {
    target,
    scopeHeader,
    required,
    maxBodyBytes,
    upstreamTimeoutMs,
    adminPrefix,
    healthTimeoutMs,
    log,
    store,
    http: {
      ...engine,
      requireScope: options.requireScope ?? scopeHeader !== undefined,
      maxExecutionMs: options.maxExecutionMs ?? upstreamTimeoutMs + 1000,
    },
  };
}
