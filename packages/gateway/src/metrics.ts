/**
 * The gateway's metrics in the Prometheus text exposition format (version 0.0.4). A few counters,
 * gauges and histograms with fixed label sets: no client library, and no label value ever comes from
 * a request, so a client cannot grow the series count.
 */

import type { OncelyEvent } from '@oncely/core';

/** What a request through the gateway came to, one per request. */
export const OUTCOMES = [
  /** Not recorded (method not covered, or no key where none is required): streamed through. */
  'passthrough',
  /** The key was new (or taken over): the request went upstream. */
  'executed',
  /** A stored response was sent again. */
  'replayed',
  /** The key completed before, but its response was too large to keep: 409, never a second run. */
  'not_stored',
  /** A request with the key was still running: 409. */
  'conflict',
  /** The key was used with another request: 422. */
  'mismatch',
  /** Missing or malformed key: 400. */
  'invalid',
  /** The body was over `--max-body`: 413, nothing ran. */
  'too_large',
  /** The store could not be reached at acquire: 503, nothing ran. */
  'store_unavailable',
  /** The upstream could not be reached or failed mid-response: 502, key released. */
  'upstream_error',
  /** The upstream did not answer in time: 504, key released. */
  'upstream_timeout',
] as const;

export type Outcome = (typeof OUTCOMES)[number];

/** How an executed request's response was settled with the store. */
export const COMMIT_RESULTS = [
  'stored',
  'stored_without_body',
  'released',
  'lease_lost',
  'pending',
  'unrecorded',
  'timed_out',
] as const;
export type CommitResult = (typeof COMMIT_RESULTS)[number];

export const STORE_OPERATIONS = ['acquire', 'complete', 'extend', 'release', 'get'] as const;
export type TimedOperation = (typeof STORE_OPERATIONS)[number];

// Seconds. Store steps are sub-millisecond (memory, sqlite) to a few ms (redis, postgres); requests
// include the upstream, so their buckets reach further.
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

class Histogram {
  readonly buckets: readonly number[];
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(buckets: readonly number[]) {
    this.buckets = buckets;
    this.counts = buckets.map(() => 0);
  }
  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.counts[i]!++;
  }
}

/** The gateway's counters; `render()` is what `GET /metrics` serves. */
export class GatewayMetrics {
  readonly #requests = new Map<Outcome, number>(OUTCOMES.map((o) => [o, 0]));
  readonly #requestSeconds = new Map<Outcome, Histogram>(
    OUTCOMES.map((o) => [o, new Histogram(REQUEST_BUCKETS)]),
  );
  readonly #commits = new Map<CommitResult, number>(COMMIT_RESULTS.map((r) => [r, 0]));
  readonly #storeSeconds = new Map<TimedOperation, Histogram>(
    STORE_OPERATIONS.map((op) => [op, new Histogram(STORE_BUCKETS)]),
  );
  readonly #storeErrors = new Map<TimedOperation, number>(STORE_OPERATIONS.map((op) => [op, 0]));
  #leaseLost = 0;
  #takeovers = 0;
  /** Keys this gateway holds a lease on right now (requests upstream). */
  leasesInFlight = 0;
  /** Requests being handled right now, proxied or recorded. */
  requestsInFlight = 0;

  /** Count one finished request. */
  request(outcome: Outcome, seconds: number): void {
    this.#requests.set(outcome, this.#requests.get(outcome)! + 1);
    this.#requestSeconds.get(outcome)!.observe(seconds);
  }

  commit(result: CommitResult): void {
    this.#commits.set(result, this.#commits.get(result)! + 1);
  }

  /** One store call and how long it took; failures count as errors too. */
  storeCall(operation: TimedOperation, seconds: number, failed: boolean): void {
    this.#storeSeconds.get(operation)!.observe(seconds);
    if (failed) this.#storeErrors.set(operation, this.#storeErrors.get(operation)! + 1);
  }

  /** The engine's events that are not per-request outcomes. */
  event(event: OncelyEvent): void {
    if (event.type === 'lease_lost') this.#leaseLost++;
    if (event.type === 'executed' && event.takeover) this.#takeovers++;
  }

  /** How many requests ended with `outcome` so far (for tests and the CLI). */
  count(outcome: Outcome): number {
    return this.#requests.get(outcome)!;
  }

  render(): string {
    const out: string[] = [];
    const head = (name: string, type: string, help: string): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    const histogram = (name: string, label: string, value: string, h: Histogram): void => {
      h.buckets.forEach((le, i) => {
        out.push(`${name}_bucket{${label}="${value}",le="${le}"} ${h.counts[i]}`);
      });
      out.push(`${name}_bucket{${label}="${value}",le="+Inf"} ${h.count}`);
      out.push(`${name}_sum{${label}="${value}"} ${h.sum}`);
      out.push(`${name}_count{${label}="${value}"} ${h.count}`);
    };

    head('oncely_gateway_requests_total', 'counter', 'Requests by outcome.');
    for (const [outcome, n] of this.#requests)
      out.push(`oncely_gateway_requests_total{outcome="${outcome}"} ${n}`);
    head(
      'oncely_gateway_request_duration_seconds',
      'histogram',
      'Time from request to response, by outcome.',
    );
    for (const [outcome, h] of this.#requestSeconds) {
      histogram('oncely_gateway_request_duration_seconds', 'outcome', outcome, h);
    }
    head('oncely_gateway_commits_total', 'counter', 'How executed requests were settled with the store.');
    for (const [result, n] of this.#commits)
      out.push(`oncely_gateway_commits_total{result="${result}"} ${n}`);
    head('oncely_gateway_store_duration_seconds', 'histogram', 'Latency of store calls, by operation.');
    for (const [operation, h] of this.#storeSeconds) {
      histogram('oncely_gateway_store_duration_seconds', 'operation', operation, h);
    }
    head('oncely_gateway_store_errors_total', 'counter', 'Store calls that failed, by operation.');
    for (const [operation, n] of this.#storeErrors) {
      out.push(`oncely_gateway_store_errors_total{operation="${operation}"} ${n}`);
    }
    head(
      'oncely_gateway_leases_in_flight',
      'gauge',
      'Keys this gateway holds a lease on (requests upstream).',
    );
    out.push(`oncely_gateway_leases_in_flight ${this.leasesInFlight}`);
    head('oncely_gateway_requests_in_flight', 'gauge', 'Requests being handled.');
    out.push(`oncely_gateway_requests_in_flight ${this.requestsInFlight}`);
    head('oncely_gateway_lease_lost_total', 'counter', 'Leases that could not be renewed.');
    out.push(`oncely_gateway_lease_lost_total ${this.#leaseLost}`);
    head('oncely_gateway_takeovers_total', 'counter', 'Keys taken over from an owner whose lease lapsed.');
    out.push(`oncely_gateway_takeovers_total ${this.#takeovers}`);
    return `${out.join('\n')}\n`;
  }
}
