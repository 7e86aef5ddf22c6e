import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectPostgres, DATABASE_URL, unique } from '@oncely/test-stores';
import type pg from 'pg';
import { NATS_KEY_HEADER, NATS_MSG_ID_HEADER } from './envelope.ts';
import { jetStreamPublisher } from './nats.ts';
import type { Outbox } from './outbox.ts';
import type { Publisher } from './publisher.ts';
import { relay } from './relay.ts';
import {
  AMQP_URL,
  connectAmqp,
  connectNats,
  eventually,
  inTransaction,
  startChild,
  testExchange,
  testOutbox,
  testStream,
} from './test-brokers.ts';

const KEYS = 50;
const PER_KEY = 40; // 2,000 messages

/**
 * Producers writing while the relays run: one sequential producer per key (so per key the intended
 * order is plain), all keys at once, 1–3 messages per transaction, notify() after each commit.
 */
async function produce(pool: pg.Pool, box: Outbox, topic: string): Promise<void> {
  await Promise.all(
    Array.from({ length: KEYS }, async (_, k) => {
      for (let n = 0; n < PER_KEY; ) {
        const take = Math.min(PER_KEY - n, 1 + ((k + n) % 3));
        await inTransaction(pool, async (tx) => {
          for (let i = 0; i < take; i++, n++) {
            await box.add(tx, { topic, key: `key_${k}`, type: 'step', payload: { k, n } });
          }
        });
        box.notify();
      }
    }),
  );
}

/** Every message once, and per key the producer's sequence numbers strictly increasing (and complete). */
function checkDelivery(delivered: Array<{ id: string; key: string; n: number }>): void {
  assert.equal(delivered.length, KEYS * PER_KEY);
  assert.equal(new Set(delivered.map((d) => d.id)).size, KEYS * PER_KEY, 'each message once');
  const last = new Map<string, number>();
  for (const { key, n } of delivered) {
    const before = last.get(key) ?? -1;
    assert.ok(n > before, `${key}: ${n} arrived after ${before}`);
    last.set(key, n);
  }
  assert.equal(last.size, KEYS);
  for (const [key, n] of last) assert.equal(n, PER_KEY - 1, `${key} complete`);
}

async function publishedCount(pool: pg.Pool, table: string): Promise<number> {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE state = 'published'`);
  return rows[0].n;
}

describe('concurrent relays', () => {
  it('4 relays in one process over 2,000 messages on 50 keys: each published once, in order per key, never two of a key in flight', async (t) => {
    const nc = await connectNats();
    const { pool, box, table, drop } = await testOutbox({ max: 8 });
    const relayPool = await connectPostgres({ max: 8 });
    const stream = await testStream(nc);
    t.after(async () => {
      await stream.remove();
      await nc.close();
      await relayPool.end();
      await drop();
    });
    const inner = jetStreamPublisher({ connection: nc });
    const inFlight = new Map<string, string>();
    const violations: string[] = [];
    let batches = 0;
    const tracked: Publisher = {
      async publish(messages, options) {
        batches++;
        for (const m of messages) {
          const other = inFlight.get(m.key);
          if (other !== undefined) violations.push(`${m.key}: ${m.id} while ${other} in flight`);
          inFlight.set(m.key, m.id);
        }
        try {
          return await inner.publish(messages, options);
        } finally {
          for (const m of messages) if (inFlight.get(m.key) === m.id) inFlight.delete(m.key);
        }
      },
    };
    const relays = Array.from({ length: 4 }, () =>
      relay({
        pool: relayPool,
        outbox: box,
        publisher: tracked,
        registry: null,
        pollIntervalMs: 50,
        cleanupIntervalMs: 0,
        statsIntervalMs: 0,
      }),
    );
    const started = performance.now();
    for (const r of relays) r.start();
    await produce(pool, box, stream.subject('steps'));
    await eventually(
      'every message published',
      async () => (await publishedCount(pool, table)) === KEYS * PER_KEY,
      30_000,
    );
    const elapsed = performance.now() - started;
    await Promise.all(relays.map((r) => r.stop()));
    t.diagnostic(`2,000 messages produced and published in ${elapsed.toFixed(0)} ms, ${batches} batches`);
    assert.deepEqual(violations, []);

    const stored = await stream.messages();
    checkDelivery(
      stored.map((m) => ({
        id: m.headers!.get(NATS_MSG_ID_HEADER),
        key: m.headers!.get(NATS_KEY_HEADER),
        n: (m.json() as { n: number }).n,
      })),
    );
  });

  it('3 relay processes over 2,000 messages on 50 keys (RabbitMQ): each published once, in order per key, never two of a key in flight', async (t) => {
    const connection = await connectAmqp();
    const { pool, box, table, drop } = await testOutbox({ max: 8 });
    const target = await testExchange(connection);
    const inflightTable = `outbox_inflight_${unique()}`;
    await pool.query(`CREATE TABLE ${inflightTable} (key text PRIMARY KEY, id uuid NOT NULL)`);
    const workers = Array.from({ length: 3 }, () =>
      startChild(new URL('./test-relay-worker.ts', import.meta.url), {
        mode: 'run',
        databaseUrl: DATABASE_URL,
        amqpUrl: AMQP_URL,
        table,
        exchange: target.exchange,
        inflightTable,
      }),
    );
    t.after(async () => {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
      await pool.query(`DROP TABLE IF EXISTS ${inflightTable}`);
      await target.remove();
      await connection.close();
      await drop();
    });
    await Promise.all(workers.map((w) => w.line('ready')));
    const started = performance.now();
    await produce(pool, box, 'bound.steps');
    await eventually(
      'every message published',
      async () => (await publishedCount(pool, table)) === KEYS * PER_KEY,
      30_000,
    );
    const elapsed = performance.now() - started;
    for (const w of workers) w.child.stdin!.end();
    const shares = await Promise.all(
      workers.map(async (w) => Number((await w.line('stopped ')).slice('stopped '.length))),
    );
    assert.deepEqual(await Promise.all(workers.map((w) => w.exited)), [0, 0, 0]);
    t.diagnostic(`2,000 messages in ${elapsed.toFixed(0)} ms; published per process: ${shares.join(', ')}`);
    const reports = workers.flatMap((w) =>
      w.lines.filter((l) => l.startsWith('violation') || l.startsWith('event')),
    );
    assert.deepEqual(reports, []);
    assert.equal(
      shares.reduce((a, b) => a + b, 0),
      KEYS * PER_KEY,
    );
    assert.ok(shares.filter((n) => n > 0).length >= 2, `the processes shared the work: ${shares}`);

    const delivered = await target.take(KEYS * PER_KEY, 20_000);
    checkDelivery(
      delivered.map((m) => ({
        id: m.properties.messageId as string,
        key: m.properties.headers!['oncely-key'] as string,
        n: (JSON.parse(m.content.toString('utf8')) as { n: number }).n,
      })),
    );
    assert.equal(await target.depth(), 0, 'and nothing more');
  });
});
