/**
 * The relay's Prometheus metrics, on prom-client. Metrics are looked up by name in the registry before
 * they are made, so many relays in one process (or one per outbox table) share them, told apart by
 * the `table` label, instead of failing on a second registration.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { OutboxStats } from './outbox.ts';

/** What the relay records. */
export interface RelayMetrics {
  batch(size: number): void;
  publishSeconds(seconds: number): void;
  published(count: number, duplicates: number): void;
  failed(count: number, kind: 'refused' | 'transient'): void;
  stats(stats: OutboxStats): void;
}

/** The metric names, for dashboards and alerts. */
export const METRIC_NAMES = Object.freeze({
  lag: 'oncely_outbox_lag_seconds',
  pending: 'oncely_outbox_pending_messages',
  dead: 'oncely_outbox_dead_messages',
  batchSize: 'oncely_outbox_batch_size',
  publishDuration: 'oncely_outbox_publish_duration_seconds',
  published: 'oncely_outbox_published_total',
  duplicates: 'oncely_outbox_duplicates_total',
  failures: 'oncely_outbox_publish_failures_total',
});

const NONE: RelayMetrics = {
  batch() {},
  publishSeconds() {},
  published() {},
  failed() {},
  stats() {},
};

export function relayMetrics(registry: Registry | null, table: string): RelayMetrics {
  if (registry === null) return NONE;
  const metric = <M>(name: string, make: () => M): M => (registry.getSingleMetric(name) as M) ?? make();
  const registers = [registry];
  const labelNames = ['table'] as const;
  const lag = metric(
    METRIC_NAMES.lag,
    () =>
      new Gauge({
        name: METRIC_NAMES.lag,
        help: 'Age of the oldest pending (unpublished, not dead) outbox message, in seconds',
        labelNames,
        registers,
      }),
  );
  const pending = metric(
    METRIC_NAMES.pending,
    () => new Gauge({ name: METRIC_NAMES.pending, help: 'Pending outbox messages', labelNames, registers }),
  );
  const dead = metric(
    METRIC_NAMES.dead,
    () =>
      new Gauge({
        name: METRIC_NAMES.dead,
        help: 'Outbox messages parked as dead (they hold their key back until requeued or discarded)',
        labelNames,
        registers,
      }),
  );
  const batchSize = metric(
    METRIC_NAMES.batchSize,
    () =>
      new Histogram({
        name: METRIC_NAMES.batchSize,
        help: 'Messages per claimed batch',
        buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
        labelNames,
        registers,
      }),
  );
  const publishDuration = metric(
    METRIC_NAMES.publishDuration,
    () =>
      new Histogram({
        name: METRIC_NAMES.publishDuration,
        help: 'Time from handing a batch to the broker to its last confirmation, in seconds',
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        labelNames,
        registers,
      }),
  );
  const published = metric(
    METRIC_NAMES.published,
    () =>
      new Counter({
        name: METRIC_NAMES.published,
        help: 'Outbox messages confirmed by the broker',
        labelNames,
        registers,
      }),
  );
  const duplicates = metric(
    METRIC_NAMES.duplicates,
    () =>
      new Counter({
        name: METRIC_NAMES.duplicates,
        help: 'Confirmed messages the broker recognised as duplicates (republished after a crash or timeout)',
        labelNames,
        registers,
      }),
  );
  const failures = metric(
    METRIC_NAMES.failures,
    () =>
      new Counter({
        name: METRIC_NAMES.failures,
        help: 'Failed publishes: refused by the broker (counted toward the poison limit) or transient',
        labelNames: ['table', 'kind'],
        registers,
      }),
  );
  const labels = { table };
  return {
    batch: (size) => batchSize.observe(labels, size),
    publishSeconds: (seconds) => publishDuration.observe(labels, seconds),
    published(count, dups) {
      published.inc(labels, count);
      if (dups > 0) duplicates.inc(labels, dups);
    },
    failed: (count, kind) => failures.inc({ table, kind }, count),
    stats(stats) {
      lag.set(labels, stats.lagMs / 1000);
      pending.set(labels, stats.pending);
      dead.set(labels, stats.dead);
    },
  };
}
