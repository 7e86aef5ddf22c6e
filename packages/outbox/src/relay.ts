/**
 * The relay: claims batches of outbox messages, publishes them, waits for the broker's confirmation,
 * then marks them published. Run as many as you like, in one process or many: claims never overlap
 * (`FOR UPDATE SKIP LOCKED` and a lease), and at most one message per key is in flight at any time.
 *
 * Timeline of one batch, and what a crash at each point does:
 *   claim (one statement: lease + token)  ── crash → the lease lapses, another relay takes it over
 *   publish, wait for every confirmation  ── crash → the same; the broker may already have some:
 *                                            they are republished with the same id (dedup window,
 *                                            consumer inbox)
 *   settle (one statement, fenced by the token) → published / retry later / dead
 * A relay never holds a transaction open while it talks to the broker.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromRow, type OutboxMessage } from './message.ts';
import { relayMetrics } from './metrics.ts';
import { type OutboxStats, outboxInternals } from './outbox.ts';
import { abortReason, type PublishResult, transientResults } from './publisher.ts';
import { backoffMs, type RelayOptions, resolveRelayOptions } from './relay-options.ts';

/** What one `runOnce()` did. */
export interface BatchOutcome {
  /** Messages claimed (including any that went dead at the claim). */
  claimed: number;
  /** Confirmed by the broker and marked published. */
  published: number;
  /** Of those, the ones the broker already had (a republish its dedup window dropped). */
  duplicates: number;
  /** Failed and scheduled for another attempt. */
  retried: number;
  /** Parked as dead in this batch. */
  dead: number;
  /** Claimed here but settled by nobody here: the lease lapsed and another relay took them over. */
  lost: number;
}

/** A relay; see {@link relay}. */
export interface Relay {
  /** Start the loop: claim, publish, settle; sleep `pollIntervalMs` or until `notify()` when idle. */
  start(): void;
  /** Stop the loop; resolves once the batch in flight (if any) is settled. */
  stop(): Promise<void>;
  /** Claim, publish and settle one batch now (also while started). */
  runOnce(): Promise<BatchOutcome>;
  /** Query the lag, pending and dead counts, and update the gauges. */
  updateStats(): Promise<OutboxStats>;
}

const LAPSED =
  'lease expired: the relay holding this message stopped (or stalled past its lease) before it settled it';
const MAX_ERROR_CHARS = 2000;

/**
 * A relay publishing one outbox's messages.
 * @example
 * const publisher = jetStreamPublisher({ connection: nc });
 * const r = relay({ pool, outbox: box, publisher });
 * r.start();
 * process.on('SIGTERM', () => r.stop());
 */
export function relay(options: RelayOptions): Relay {
  const config = resolveRelayOptions(options);
  const { pool, outbox, publisher, onEvent } = config;
  const { sql } = outboxInternals(outbox);
  const metrics = relayMetrics(config.registry, outbox.table);
  const emit = (event: Parameters<typeof onEvent>[0]): void => {
    try {
      onEvent(event);
    } catch {
      // A throwing listener must not stop the relay.
    }
  };

  /** The key after which the next claim starts its walk ('' = from the first key): only for fairness. */
  let cursor = '';
  let running = false;
  let loopDone: Promise<void> | undefined;
  let woken = false;
  let wake: (() => void) | undefined;
  let unsubscribe: (() => void) | undefined;

  async function runOnce(): Promise<BatchOutcome> {
    const token = randomUUID();
    const claimedAt = performance.now();
    const claim = async (limit: number, after: string) =>
      (await pool.query(sql.claim, [limit, token, config.leaseMs, LAPSED, config.maxFailures, after])).rows;
    // Walk the keys from where the last claim stopped, then, if the batch is not full, from the
    // first key: every key gets its turn, however many keys are busy. One token for both parts.
    const rows = await claim(config.batchSize, cursor);
    if (cursor !== '' && rows.length < config.batchSize) {
      rows.push(...(await claim(config.batchSize - rows.length, '')));
    }
    cursor = rows.length === 0 ? '' : String(rows.at(-1)!.last_key);
    const outcome: BatchOutcome = {
      claimed: rows.length,
      published: 0,
      duplicates: 0,
      retried: 0,
      dead: 0,
      lost: 0,
    };
    const live: Array<{ seq: string; message: OutboxMessage }> = [];
    for (const row of rows) {
      const message = fromRow(row);
      if (row.state === 'dead') {
        outcome.dead++;
        emit({ type: 'dead', id: message.id, key: message.key, error: LAPSED });
      } else live.push({ seq: String(row.seq), message });
    }
    if (live.length === 0) return outcome;
    // Oldest first: not needed for per-key order (one message per key), but it keeps the broker's
    // order close to the producers' across keys too.
    live.sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
    metrics.batch(live.length);

    const messages = live.map((entry) => entry.message);
    const started = performance.now();
    const results = await publishBatch(messages);
    metrics.publishSeconds((performance.now() - started) / 1000);

    const ok: boolean[] = [];
    const counted: boolean[] = [];
    const errors: Array<string | null> = [];
    const delays: number[] = [];
    results.forEach((result, i) => {
      const { attempt } = messages[i]!;
      ok.push(result.ok);
      counted.push(!result.ok && result.transient !== true);
      errors.push(result.ok ? null : describe(result.error));
      delays.push(result.ok ? 0 : backoffMs(attempt, config.backoffBaseMs, config.backoffMaxMs));
    });
    const settled = await settle(
      [live.map((entry) => entry.seq), token, config.maxFailures, ok, counted, errors, delays],
      claimedAt + config.leaseMs,
    );
    const states = new Map<string, string>();
    for (const row of settled ?? []) states.set(String(row.seq), row.state as string);
    live.forEach(({ seq, message }, i) => {
      const state = states.get(seq);
      const result = results[i]!;
      if (state === undefined) outcome.lost++;
      else if (state === 'published') {
        outcome.published++;
        if (result.ok && result.duplicate === true) outcome.duplicates++;
      } else if (state === 'dead') {
        outcome.dead++;
        emit({ type: 'dead', id: message.id, key: message.key, error: errors[i]! });
      } else {
        outcome.retried++;
        emit({
          type: 'retry',
          id: message.id,
          key: message.key,
          error: errors[i]!,
          transient: !counted[i],
          delayMs: delays[i]!,
        });
      }
    });
    const refused = counted.filter(Boolean).length;
    const transient = results.length - ok.filter(Boolean).length - refused;
    if (refused > 0) metrics.failed(refused, 'refused');
    if (transient > 0) metrics.failed(transient, 'transient');
    if (outcome.published > 0) {
      metrics.published(outcome.published, outcome.duplicates);
      emit({ type: 'published', count: outcome.published, duplicates: outcome.duplicates });
    }
    if (outcome.lost > 0) emit({ type: 'lost', count: outcome.lost });
    return outcome;
  }

  /** Publish, bounded by `publishTimeoutMs`; never throws: a failure is a transient result per message. */
  async function publishBatch(messages: OutboxMessage[]): Promise<PublishResult[]> {
    const controller = new AbortController();
    const timer = setTimeout(
      () =>
        controller.abort(new Error(`no confirmation from the broker within ${config.publishTimeoutMs} ms`)),
      config.publishTimeoutMs,
    );
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<PublishResult[]>((resolve) => {
      onAbort = () => resolve(transientResults(messages.length, abortReason(controller.signal)));
      controller.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const results = await Promise.race([
        Promise.resolve().then(() => publisher.publish(messages, { signal: controller.signal })),
        aborted,
      ]);
      if (!Array.isArray(results) || results.length !== messages.length) {
        return transientResults(
          messages.length,
          new Error(
            `the publisher answered ${String(results?.length)} results for ${messages.length} messages`,
          ),
        );
      }
      return results;
    } catch (error) {
      return transientResults(messages.length, asError(error));
    } finally {
      clearTimeout(timer);
      controller.signal.removeEventListener('abort', onAbort!);
    }
  }

  /**
   * Run the settle statement; on a database error retry with backoff while the lease still holds
   * (after that another relay may own the rows, and the fence would refuse the write anyway).
   * Resolves with the settled rows, or undefined when it gave up (the lease then lapses, and the
   * messages are republished with the same id by whichever relay claims them next).
   */
  async function settle(values: unknown[], leaseEnd: number) {
    for (let delay = 50; ; delay = Math.min(delay * 2, 2000)) {
      try {
        return (await pool.query(sql.settle, values)).rows;
      } catch (error) {
        emit({ type: 'error', phase: 'settle', error });
        if (performance.now() + delay >= leaseEnd) return undefined;
        await sleep(delay);
      }
    }
  }

  async function updateStats(): Promise<OutboxStats> {
    const stats = await outbox.stats(pool);
    metrics.stats(stats);
    return stats;
  }

  async function loop(): Promise<void> {
    let nextCleanup = 0;
    let nextStats = 0;
    while (running) {
      woken = false;
      let claimed = 0;
      try {
        claimed = (await runOnce()).claimed;
      } catch (error) {
        emit({ type: 'error', phase: 'claim', error });
      }
      const now = performance.now();
      if (config.cleanupIntervalMs > 0 && now >= nextCleanup) {
        nextCleanup = now + config.cleanupIntervalMs;
        await outbox
          .cleanup(pool, { retentionMs: config.retentionMs, batchSize: config.cleanupBatchSize })
          .catch((error: unknown) => emit({ type: 'error', phase: 'cleanup', error }));
      }
      if (config.statsIntervalMs > 0 && now >= nextStats) {
        nextStats = now + config.statsIntervalMs;
        await updateStats().catch((error: unknown) => emit({ type: 'error', phase: 'stats', error }));
      }
      // A full or partial batch: the keys' next messages may be due now. Woken meanwhile: a commit
      // may have landed after this claim's snapshot. Otherwise sleep until polled or woken.
      if (!running || claimed > 0 || woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, config.pollIntervalMs);
        function done(): void {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      unsubscribe = outboxInternals(outbox).subscribe(() => {
        woken = true;
        wake?.();
      });
      loopDone = loop();
    },
    async stop() {
      running = false;
      unsubscribe?.();
      unsubscribe = undefined;
      wake?.();
      await loopDone;
      loopDone = undefined;
    },
    runOnce,
    updateStats,
  };
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

function describe(error: Error): string {
  const text = `${error.name}: ${error.message}`;
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}…` : text;
}
