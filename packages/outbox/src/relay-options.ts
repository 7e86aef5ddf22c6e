import { type Registry, register } from 'prom-client';
import { invalid, type Outbox } from './outbox.ts';
import type { PgQueryable } from './pg-types.ts';
import type { Publisher } from './publisher.ts';

/** What the relay reports as it goes; expected outcomes, not exceptions. The relay never logs. */
export type RelayEvent =
  | { type: 'published'; count: number; duplicates: number }
  | { type: 'retry'; id: string; key: string; error: string; transient: boolean; delayMs: number }
  | { type: 'dead'; id: string; key: string; error: string }
  /** Settles that wrote nothing: the lease had lapsed and another relay took the messages over. */
  | { type: 'lost'; count: number }
  | { type: 'error'; phase: 'claim' | 'settle' | 'cleanup' | 'stats'; error: unknown };

/** Options of `relay()`. Every default is in `RELAY_DEFAULTS`. */
export interface RelayOptions {
  /** A pool (`pg.Pool`) the relay runs its statements on, one autocommit statement each. Never ended by the relay. */
  pool: PgQueryable;
  /** The outbox to publish from (made by `outbox()`). */
  outbox: Outbox;
  /** Where to publish: `jetStreamPublisher()`, `rabbitMqPublisher()` or your own. Never closed by the relay. */
  publisher: Publisher;
  /** Messages claimed per batch (at most one per key). @default 100 */
  batchSize?: number;
  /** How long an idle relay waits before looking again, when nothing woke it with `notify()`. @default 1000 */
  pollIntervalMs?: number;
  /** How long a claim is held: after a crash, another relay takes the messages over once it lapses. @default 30_000 */
  leaseMs?: number;
  /** Longest wait for the broker's confirmations of a batch; must be shorter than `leaseMs`. @default 10_000 */
  publishTimeoutMs?: number;
  /** The poison limit: failures that were the message's own fault before it is parked as dead. @default 10 */
  maxFailures?: number;
  /** First retry delay; doubled per attempt (with jitter) up to `backoffMaxMs`. @default 1000 */
  backoffBaseMs?: number;
  /** Longest retry delay. @default 60_000 */
  backoffMaxMs?: number;
  /** How long published rows are kept before the cleanup deletes them. @default 86_400_000 (24 h) */
  retentionMs?: number;
  /** How often this relay runs the cleanup; 0 disables. @default 60_000 */
  cleanupIntervalMs?: number;
  /** Rows deleted per cleanup statement. @default 1000 */
  cleanupBatchSize?: number;
  /** How often this relay refreshes the lag, pending and dead gauges (one query); 0 disables. @default 10_000 */
  statsIntervalMs?: number;
  /** The prom-client registry to register the metrics in; `null` for none. @default prom-client's global `register` */
  registry?: Registry | null;
  /** Outcome and error events. @default none */
  onEvent?: (event: RelayEvent) => void;
}

/**
 * Every default of `relay()`, in one place.
 * @example
 * relay({ pool, outbox: box, publisher, pollIntervalMs: 5 * RELAY_DEFAULTS.pollIntervalMs });
 */
export const RELAY_DEFAULTS = Object.freeze({
  batchSize: 100,
  pollIntervalMs: 1000,
  leaseMs: 30_000,
  publishTimeoutMs: 10_000,
  maxFailures: 10,
  backoffBaseMs: 1000,
  backoffMaxMs: 60_000,
  retentionMs: 86_400_000,
  cleanupIntervalMs: 60_000,
  cleanupBatchSize: 1000,
  statsIntervalMs: 10_000,
});

type NumberOption = keyof typeof RELAY_DEFAULTS;

/** The options, validated and merged with the defaults. */
export interface RelayConfig extends Record<NumberOption, number> {
  pool: PgQueryable;
  outbox: Outbox;
  publisher: Publisher;
  registry: Registry | null;
  onEvent: (event: RelayEvent) => void;
}

// setTimeout takes a signed 32-bit count of milliseconds.
const MAX_MS = 2 ** 31 - 1;
const RANGES: Record<NumberOption, [min: number, max: number]> = {
  batchSize: [1, 10_000],
  pollIntervalMs: [1, MAX_MS],
  leaseMs: [2, MAX_MS],
  publishTimeoutMs: [1, MAX_MS],
  maxFailures: [1, 1_000_000],
  backoffBaseMs: [1, MAX_MS],
  backoffMaxMs: [1, MAX_MS],
  retentionMs: [0, Number.MAX_SAFE_INTEGER],
  cleanupIntervalMs: [0, MAX_MS],
  cleanupBatchSize: [1, 100_000],
  statsIntervalMs: [0, MAX_MS],
};
const OPTION_NAMES: ReadonlySet<string> = new Set([
  'pool',
  'outbox',
  'publisher',
  'registry',
  'onEvent',
  ...Object.keys(RELAY_DEFAULTS),
]);

/** Merge with the defaults and reject unknown or invalid options, so a typo fails at start-up. */
export function resolveRelayOptions(options: RelayOptions): RelayConfig {
  if (typeof options !== 'object' || options === null) {
    throw invalid('relay() takes an options object: relay({ pool, outbox, publisher })');
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw invalid(`relay: unknown option "${name}"`);
  }
  const { pool, outbox, publisher, onEvent = () => {} } = options;
  if (typeof pool?.query !== 'function') {
    throw invalid('relay: "pool" must be a connected pool with query(text, values), e.g. new pg.Pool(...)');
  }
  if (typeof publisher?.publish !== 'function') {
    throw invalid('relay: "publisher" must have publish(messages, { signal })');
  }
  if (typeof onEvent !== 'function') throw invalid('relay: "onEvent" must be a function');
  const registry = options.registry === undefined ? register : options.registry;
  if (registry !== null && typeof registry?.getSingleMetric !== 'function') {
    throw invalid('relay: "registry" must be a prom-client Registry, or null for no metrics');
  }
  const numbers = {} as Record<NumberOption, number>;
  for (const name of Object.keys(RELAY_DEFAULTS) as NumberOption[]) {
    const value = options[name] ?? RELAY_DEFAULTS[name];
    const [min, max] = RANGES[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw invalid(`relay: "${name}" must be an integer from ${min} to ${max}, got ${String(value)}`);
    }
    numbers[name] = value;
  }
  // A relay must give up on the broker before its lease lapses: otherwise a slow confirmation could
  // still be outstanding when another relay takes the batch over and publishes the key's next message.
  if (numbers.publishTimeoutMs >= numbers.leaseMs) {
    throw invalid(
      `relay: "publishTimeoutMs" (${numbers.publishTimeoutMs}) must be shorter than "leaseMs" (${numbers.leaseMs})`,
    );
  }
  if (numbers.backoffMaxMs < numbers.backoffBaseMs) {
    throw invalid('relay: "backoffMaxMs" must be at least "backoffBaseMs"');
  }
  return { pool, outbox, publisher, registry, onEvent, ...numbers };
}

/**
 * The delay before attempt `attempt + 1`: base × 2^(attempt − 1), capped, times a jitter factor in
 * [0.5, 1) so that the messages of one outage do not come back in one burst.
 */
export function backoffMs(
  attempt: number,
  base: number,
  max: number,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(max, base * 2 ** Math.min(Math.max(attempt - 1, 0), 40));
  return Math.round(exponential * (0.5 + random() / 2));
}
