import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import { Registry } from 'prom-client';
import type { OutboxMessage } from './message.ts';
import { METRIC_NAMES } from './metrics.ts';
import { jetStreamPublisher } from './nats.ts';
import type { Publisher, PublishResult } from './publisher.ts';
import { relay } from './relay.ts';
import { backoffMs, RELAY_DEFAULTS, type RelayEvent } from './relay-options.ts';
import { connectNats, eventually, inTransaction, testOutbox, testStream } from './test-brokers.ts';

const quiet = { registry: null, cleanupIntervalMs: 0, statsIntervalMs: 0 } as const;

/**
 * A publisher for fault injection: records what it is given and answers through `answer` (confirmed
 * by default). The broker-facing behaviour itself is tested against the real brokers elsewhere.
 */
function recorder(
  answer: (messages: readonly OutboxMessage[]) => Promise<PublishResult[]> | PublishResult[] = (m) =>
    m.map(() => ({ ok: true })),
) {
  const batches: OutboxMessage[][] = [];
  const publisher: Publisher = {
    publish: async (messages) => {
      batches.push([...messages]);
      return answer(messages);
    },
  };
  return { publisher, batches };
}

/** A promise with its resolve, to hold a publish until the test lets it go. */
function gate<T>() {
  let open!: (value: T) => void;
  const wait = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

describe('relay', () => {
  it('a relay whose lease lapsed cannot settle: the relay that took the batch over owns it', async (t) => {
    const { pool, box, table, drop } = await testOutbox();
    t.after(drop);
    await inTransaction(pool, (tx) => box.add(tx, { topic: 'a', key: 'k', type: 't', payload: 1 }));
    const held = gate<PublishResult[]>();
    const events: RelayEvent[] = [];
    const stale = relay({
      pool,
      outbox: box,
      publisher: recorder(() => held.wait).publisher,
      onEvent: (event) => events.push(event),
      ...quiet,
    });
    const staleRun = stale.runOnce();
    await eventually('the stale relay claimed', async () => {
      const { rows } = await pool.query(`SELECT claim_token FROM ${table}`);
      return rows[0].claim_token !== null;
    });
    // The stale relay stalls past its lease (a long GC pause, a frozen VM).
    await pool.query(`UPDATE ${table} SET claimed_until = now() - interval '1 second'`);
    const fresh = recorder();
    const taken = await relay({ pool, outbox: box, publisher: fresh.publisher, ...quiet }).runOnce();
    assert.equal(taken.published, 1);
    held.open([{ ok: true }]);
    const staleOutcome = await staleRun;
    assert.equal(staleOutcome.lost, 1);
    assert.equal(staleOutcome.published, 0);
    assert.deepEqual(events, [{ type: 'lost', count: 1 }]);
    const { rows } = await pool.query(`SELECT state, attempts, failures, last_error FROM ${table}`);
    assert.equal(rows[0].state, 'published');
    assert.equal(rows[0].attempts, 2);
    assert.equal(rows[0].failures, 1, 'the lapse counts against the message');
    assert.match(rows[0].last_error, /lease expired/);
  });

  it('a message whose leases keep lapsing (it kills every relay) goes dead at the claim, unpublished', async (t) => {
    const { pool, box, table, drop } = await testOutbox();
    t.after(drop);
    const { id } = await inTransaction(pool, (tx) =>
      box.add(tx, { topic: 'a', key: 'k', type: 't', payload: 1 }),
    );
    await pool.query(
      `UPDATE ${table} SET claim_token = gen_random_uuid(), claimed_until = now() - interval '1 second', failures = 2, attempts = 3`,
    );
    const events: RelayEvent[] = [];
    const { publisher, batches } = recorder();
    const outcome = await relay({
      pool,
      outbox: box,
      publisher,
      maxFailures: 3,
      onEvent: (event) => events.push(event),
      ...quiet,
    }).runOnce();
    assert.deepEqual(outcome, { claimed: 1, published: 0, duplicates: 0, retried: 0, dead: 1, lost: 0 });
    assert.equal(batches.length, 0, 'never handed to the broker again');
    assert.equal(events[0]?.type, 'dead');
    const [dead] = await box.listDead(pool);
    assert.equal(dead?.id, id);
    assert.match(dead!.lastError!, /lease expired/);
  });

  it('claims the heads of the keys in turns: with more busy keys than the batch holds, every key is served', async (t) => {
    const { pool, box, drop } = await testOutbox();
    t.after(drop);
    await inTransaction(pool, async (tx) => {
      for (let n = 0; n < 3; n++) {
        for (let k = 0; k < 6; k++) await box.add(tx, { topic: 'a', key: `key_${k}`, type: 't', payload: n });
      }
    });
    const { publisher, batches } = recorder();
    const r = relay({ pool, outbox: box, publisher, batchSize: 2, ...quiet });
    for (let i = 0; i < 9; i++) assert.equal((await r.runOnce()).published, 2);
    assert.equal((await r.runOnce()).claimed, 0);
    const keys = batches.map((batch) => batch.map((m) => m.key).join(','));
    // Without the rotation, key_0 and key_1 would go first until they ran dry.
    assert.deepEqual(keys.slice(0, 3), ['key_0,key_1', 'key_2,key_3', 'key_4,key_5']);
    const order = new Map<string, number[]>();
    for (const m of batches.flat()) order.set(m.key, [...(order.get(m.key) ?? []), m.payload as number]);
    for (const [key, seen] of order) assert.deepEqual(seen, [0, 1, 2], key);
  });

  it('a publisher that throws, answers short, or never answers: every message transient, nothing counted', async (t) => {
    const { pool, box, table, drop } = await testOutbox();
    t.after(drop);
    await inTransaction(pool, async (tx) => {
      await box.add(tx, { topic: 'a', key: 'k1', type: 't', payload: 1 });
      await box.add(tx, { topic: 'a', key: 'k2', type: 't', payload: 2 });
    });
    const options = { pool, outbox: box, maxFailures: 1, backoffBaseMs: 1, backoffMaxMs: 1, ...quiet };
    const cases: Array<[string, Publisher['publish'], RegExp]> = [
      ['throws', async () => Promise.reject(new Error('socket hang up')), /socket hang up/],
      ['answers short', async () => [{ ok: true }], /answered 1 results for 2 messages/],
      ['never answers', () => new Promise(() => {}), /no confirmation from the broker within 50 ms/],
    ];
    for (const [name, publish, error] of cases) {
      const started = performance.now();
      const outcome = await relay({ ...options, publisher: { publish }, publishTimeoutMs: 50 }).runOnce();
      assert.equal(outcome.retried, 2, name);
      assert.ok(performance.now() - started < 1000, `${name}: bounded by the publish timeout`);
      const { rows } = await pool.query(`SELECT state, failures, last_error FROM ${table}`);
      for (const row of rows) {
        assert.equal(row.state, 'pending', name);
        assert.equal(row.failures, 0, name);
        assert.match(row.last_error, error, name);
      }
      await sleep(3);
    }
  });

  it('a throwing event listener does not stop the relay', async (t) => {
    const { pool, box, drop } = await testOutbox();
    t.after(drop);
    await inTransaction(pool, (tx) => box.add(tx, { topic: 'a', key: 'k', type: 't', payload: 1 }));
    const r = relay({
      pool,
      outbox: box,
      publisher: recorder().publisher,
      onEvent: () => {
        throw new Error('listener bug');
      },
      ...quiet,
    });
    assert.equal((await r.runOnce()).published, 1);
  });

  it('started, it polls, cleans up past the retention and refreshes stats', async (t) => {
    const { pool, box, table, drop } = await testOutbox();
    t.after(drop);
    const { publisher, batches } = recorder();
    const registry = new Registry();
    const r = relay({
      pool,
      outbox: box,
      publisher,
      pollIntervalMs: 20,
      retentionMs: 0,
      cleanupIntervalMs: 20,
      statsIntervalMs: 20,
      registry,
    });
    r.start();
    r.start(); // twice is once
    await inTransaction(pool, (tx) => box.add(tx, { topic: 'a', key: 'k', type: 't', payload: 1 }));
    await eventually('published by polling', () => batches.length === 1);
    await eventually(
      'cleaned up',
      async () => (await pool.query(`SELECT 1 FROM ${table}`)).rows.length === 0,
    );
    await r.stop();
    await r.stop(); // twice is fine
    const published = await registry.getSingleMetric(METRIC_NAMES.published)!.get();
    assert.equal(published.values[0]?.value, 1);
  });

  it('notify() after COMMIT publishes far sooner than the polling interval, and stop() does not wait for the poll', async (t) => {
    const nc: NatsConnection = await connectNats();
    const { pool, box, drop } = await testOutbox();
    const stream = await testStream(nc);
    t.after(async () => {
      await stream.remove();
      await nc.close();
      await drop();
    });
    const inner = jetStreamPublisher({ connection: nc });
    const confirmedAt = new Map<string, number>();
    const publisher: Publisher = {
      async publish(messages, options) {
        const results = await inner.publish(messages, options);
        for (const m of messages) confirmedAt.set(m.id, performance.now());
        return results;
      },
    };
    const pollIntervalMs = 10_000;
    const r = relay({ pool, outbox: box, publisher, pollIntervalMs, ...quiet });
    r.start();
    await sleep(100); // the first (empty) claim is done; the relay sleeps for 10 s now

    const silent = await inTransaction(pool, (tx) =>
      box.add(tx, { topic: stream.subject('x'), key: 'quiet', type: 't', payload: 0 }),
    );
    await sleep(300);
    assert.equal(confirmedAt.has(silent.id), false, 'without notify() the relay waits for its poll');
    box.notify();
    await eventually('published once notified', () => confirmedAt.has(silent.id), 2000);

    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const { id } = await inTransaction(pool, (tx) =>
        box.add(tx, { topic: stream.subject('x'), key: `k${i}`, type: 't', payload: i }),
      );
      const committed = performance.now();
      box.notify();
      await eventually('published', () => confirmedAt.has(id), 2000);
      latencies.push(confirmedAt.get(id)! - committed);
    }
    latencies.sort((a, b) => a - b);
    const median = latencies[10]!;
    const worst = latencies.at(-1)!;
    t.diagnostic(
      `commit-to-confirm with notify(): median ${median.toFixed(1)} ms, max ${worst.toFixed(1)} ms`,
    );
    assert.ok(worst < pollIntervalMs / 20, `max ${worst} ms, against a ${pollIntervalMs} ms poll`);
    const stopping = performance.now();
    await r.stop();
    assert.ok(performance.now() - stopping < 1000, 'stop() does not wait out the 10 s poll');
  });

  it('reports batch size, publish latency, published, failures, lag, pending and dead to the injected registry', async (t) => {
    const { pool, box, table, drop } = await testOutbox();
    t.after(drop);
    const registry = new Registry();
    const base = {
      pool,
      outbox: box,
      registry,
      cleanupIntervalMs: 0,
      statsIntervalMs: 0,
      backoffBaseMs: 1,
      backoffMaxMs: 1,
    };
    const ok = relay({ ...base, publisher: recorder().publisher });
    // A second relay on the same registry shares the metrics rather than failing to register them.
    const refusing = relay({
      ...base,
      maxFailures: 1,
      publisher: recorder((m) => m.map(() => ({ ok: false, error: new Error('refused') }))).publisher,
    });
    await inTransaction(pool, async (tx) => {
      for (let i = 0; i < 3; i++) await box.add(tx, { topic: 'a', key: `k${i}`, type: 't', payload: i });
    });
    assert.equal((await ok.runOnce()).published, 3);
    await inTransaction(pool, (tx) => box.add(tx, { topic: 'a', key: 'poison', type: 't', payload: 0 }));
    assert.equal((await refusing.runOnce()).dead, 1);
    await inTransaction(pool, (tx) => box.add(tx, { topic: 'a', key: 'late', type: 't', payload: 0 }));
    await pool.query(`UPDATE ${table} SET created_at = now() - interval '3 seconds' WHERE key = 'late'`);
    assert.deepEqual({ ...(await ok.updateStats()), lagMs: 0 }, { pending: 1, dead: 1, lagMs: 0 });

    const value = async (name: string, labels: Record<string, string> = {}, suffix = '') => {
      const metric = await registry.getSingleMetric(name)!.get();
      const found = metric.values.find(
        (v) =>
          (v as { metricName?: string }).metricName === `${name}${suffix}` ||
          (suffix === '' && !('metricName' in v)),
      );
      for (const [k, v] of Object.entries(labels)) assert.equal(found?.labels[k], v);
      return found?.value;
    };
    assert.equal(await value(METRIC_NAMES.published, { table }), 3);
    assert.equal(await value(METRIC_NAMES.failures, { table, kind: 'refused' }), 1);
    assert.equal(await value(METRIC_NAMES.batchSize, {}, '_count'), 2);
    assert.equal(await value(METRIC_NAMES.batchSize, {}, '_sum'), 4);
    assert.equal(await value(METRIC_NAMES.publishDuration, {}, '_count'), 2);
    assert.equal(await value(METRIC_NAMES.pending), 1);
    assert.equal(await value(METRIC_NAMES.dead), 1);
    const lag = (await value(METRIC_NAMES.lag)) as number;
    assert.ok(lag >= 3 && lag < 60, `lag ${lag} s`);
    assert.match(await registry.metrics(), /oncely_outbox_lag_seconds\{table="outbox_test_/);
  });

  it('rejects unknown and invalid options at construction', async (t) => {
    const { pool, box, drop } = await testOutbox();
    t.after(drop);
    const { publisher } = recorder();
    const base = { pool, outbox: box, publisher, registry: null };
    assert.throws(() => relay({ ...base, batchsize: 5 } as never), /unknown option "batchsize"/);
    assert.throws(() => relay({ ...base, batchSize: 0 }), /"batchSize" must be an integer/);
    assert.throws(() => relay({ ...base, leaseMs: 1000, publishTimeoutMs: 1000 }), /shorter than "leaseMs"/);
    assert.throws(() => relay({ ...base, backoffBaseMs: 10, backoffMaxMs: 5 }), /backoffMaxMs/);
    assert.throws(() => relay({ ...base, outbox: {} as never }), /made by outbox\(\)/);
    assert.throws(() => relay({ ...base, pool: {} as never }), /"pool"/);
    assert.throws(() => relay({ ...base, publisher: {} as never }), /"publisher"/);
    assert.throws(() => relay({ ...base, registry: {} as never }), /"registry"/);
    assert.equal(RELAY_DEFAULTS.publishTimeoutMs < RELAY_DEFAULTS.leaseMs, true);
  });
});

describe('backoffMs', () => {
  it('doubles per attempt from the base, capped, with jitter in [0.5, 1)', () => {
    assert.equal(
      backoffMs(1, 100, 10_000, () => 0),
      50,
    );
    assert.equal(
      backoffMs(1, 100, 10_000, () => 0.999_999),
      100,
    );
    assert.equal(
      backoffMs(3, 100, 10_000, () => 0.999_999),
      400,
    );
    assert.equal(
      backoffMs(30, 100, 10_000, () => 0.999_999),
      10_000,
    );
    assert.equal(
      backoffMs(5000, 100, 10_000, () => 0),
      5000,
    );
  });
});
