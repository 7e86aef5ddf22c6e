import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import { faultProxy } from '@oncely/test-stores';
import {
  CONTENT_TYPE,
  NATS_CONTENT_TYPE_HEADER,
  NATS_KEY_HEADER,
  NATS_MSG_ID_HEADER,
  NATS_TYPE_HEADER,
} from './envelope.ts';
import type { OutboxMessage } from './message.ts';
import { jetStreamPublisher } from './nats.ts';
import { relay } from './relay.ts';
import { connectNats, inTransaction, NATS_URL, testOutbox, testStream } from './test-brokers.ts';

const quiet = { registry: null, cleanupIntervalMs: 0, statsIntervalMs: 0 } as const;

describe('JetStream publisher', () => {
  let nc: NatsConnection;
  before(async () => {
    nc = await connectNats();
  });
  after(async () => {
    await nc.close();
  });

  it('publishes nothing for a rolled-back transaction, and a committed message once with the envelope', async (t) => {
    const { pool, box, drop } = await testOutbox();
    const stream = await testStream(nc);
    t.after(async () => {
      await stream.remove();
      await drop();
    });
    const r = relay({ pool, outbox: box, publisher: jetStreamPublisher({ connection: nc }), ...quiet });

    await assert.rejects(
      inTransaction(pool, async (tx) => {
        await box.add(tx, {
          topic: stream.subject('orders.paid'),
          key: 'order_1',
          type: 'order.paid',
          payload: { n: 1 },
        });
        throw new Error('business rule failed');
      }),
      /business rule failed/,
    );
    assert.equal((await r.runOnce()).claimed, 0);
    assert.equal(await stream.count(), 0);

    const { id } = await inTransaction(pool, (tx) =>
      box.add(tx, {
        topic: stream.subject('orders.paid'),
        key: 'order_1',
        type: 'order.paid',
        payload: { orderId: 'order_1', amount: 500, note: 'café' },
        headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      }),
    );
    assert.deepEqual(await r.runOnce(), {
      claimed: 1,
      published: 1,
      duplicates: 0,
      retried: 0,
      dead: 0,
      lost: 0,
    });
    assert.equal((await r.runOnce()).claimed, 0, 'a published message is never claimed again');

    const [stored, ...rest] = await stream.messages();
    assert.equal(rest.length, 0);
    assert.equal(stored!.subject, stream.subject('orders.paid'));
    assert.equal(stored!.headers?.get(NATS_MSG_ID_HEADER), id);
    assert.equal(stored!.headers?.get(NATS_TYPE_HEADER), 'order.paid');
    assert.equal(stored!.headers?.get(NATS_KEY_HEADER), 'order_1');
    assert.equal(stored!.headers?.get(NATS_CONTENT_TYPE_HEADER), CONTENT_TYPE);
    assert.equal(
      stored!.headers?.get('traceparent'),
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    );
    assert.deepEqual(JSON.parse(new TextDecoder().decode(stored!.data)), {
      orderId: 'order_1',
      amount: 500,
      note: 'café',
    });
    const { rows } = await pool.query(`SELECT state, attempts, failures, published_at FROM ${box.table}`);
    assert.equal(rows[0].state, 'published');
    assert.equal(rows[0].attempts, 1);
    assert.ok(rows[0].published_at instanceof Date);
  });

  it('a republish of the same id inside the duplicate window is dropped by JetStream', async (t) => {
    const { pool, box, drop } = await testOutbox();
    const stream = await testStream(nc, { duplicateWindowMs: 60_000 });
    t.after(async () => {
      await stream.remove();
      await drop();
    });
    const r = relay({ pool, outbox: box, publisher: jetStreamPublisher({ connection: nc }), ...quiet });
    await inTransaction(pool, (tx) =>
      box.add(tx, { topic: stream.subject('x'), key: 'k', type: 't', payload: 1, id: 'order_9:paid' }),
    );
    assert.equal((await r.runOnce()).published, 1);
    // As if the relay had died between the broker's confirmation and its mark.
    await pool.query(`UPDATE ${box.table} SET state = 'pending', published_at = NULL`);
    const again = await r.runOnce();
    assert.equal(again.published, 1);
    assert.equal(again.duplicates, 1, 'the PubAck says duplicate');
    assert.equal(await stream.count(), 1, 'the stream still holds one message');
  });

  it('a subject no stream captures is a failure of that message, counted toward the poison limit', async (t) => {
    const { pool, box, drop } = await testOutbox();
    const stream = await testStream(nc);
    t.after(async () => {
      await stream.remove();
      await drop();
    });
    const events: string[] = [];
    const r = relay({
      pool,
      outbox: box,
      publisher: jetStreamPublisher({ connection: nc }),
      maxFailures: 2,
      backoffBaseMs: 1,
      backoffMaxMs: 1,
      onEvent: (event) => events.push(event.type),
      ...quiet,
    });
    await inTransaction(pool, async (tx) => {
      await box.add(tx, { topic: `nowhere_${stream.name}.x`, key: 'a', type: 't', payload: {} });
      await box.add(tx, { topic: stream.subject('x'), key: 'b', type: 't', payload: {} });
    });
    const first = await r.runOnce();
    assert.equal(first.published, 1, 'the routable message of the batch is not held back');
    assert.equal(first.retried, 1);
    await sleep(5);
    assert.equal((await r.runOnce()).dead, 1);
    const [dead] = await box.listDead(pool);
    assert.equal(dead!.key, 'a');
    assert.equal(dead!.failures, 2);
    assert.match(dead!.lastError!, /no JetStream stream captures subject "nowhere_/);
    assert.deepEqual(events, ['retry', 'published', 'dead']);
  });

  it('broker unreachable: retried with growing backoff, not counted against the messages, all published after', async (t) => {
    const { pool, box, table, drop } = await testOutbox();
    const stream = await testStream(nc);
    const proxy = await faultProxy({ host: '127.0.0.1', port: Number(new URL(NATS_URL).port || 4222) });
    const sick = await connectNats({
      servers: proxy.url(NATS_URL),
      reconnectTimeWait: 50,
      maxReconnectAttempts: -1,
      ignoreClusterUpdates: true,
    });
    t.after(async () => {
      await sick.close().catch(() => {});
      await proxy.close();
      await stream.remove();
      await drop();
    });
    const r = relay({
      pool,
      outbox: box,
      publisher: jetStreamPublisher({ connection: sick, timeoutMs: 200 }),
      publishTimeoutMs: 300,
      // Long enough that "not due yet" holds on a loaded machine between two statements.
      backoffBaseMs: 200,
      backoffMaxMs: 10_000,
      maxFailures: 1, // a single counted failure would kill them: an outage must not count
      ...quiet,
    });
    await inTransaction(pool, async (tx) => {
      for (let i = 0; i < 20; i++) {
        await box.add(tx, { topic: stream.subject('x'), key: `k${i % 5}`, type: 't', payload: { i } });
      }
    });
    proxy.pause();
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const outcome = await r.runOnce();
      assert.equal(outcome.claimed, 5, 'one message per key');
      assert.equal(outcome.retried, 5);
      assert.equal((await r.runOnce()).claimed, 0, 'not due before its backoff');
      const { rows } = await pool.query(
        `SELECT failures, last_error, extract(epoch FROM next_attempt_at - now()) * 1000 AS wait_ms
         FROM ${table} WHERE attempts = $1`,
        [attempt],
      );
      assert.equal(rows.length, 5);
      for (const row of rows) {
        assert.equal(row.failures, 0);
        assert.match(row.last_error, /TimeoutError|no confirmation/);
      }
      delays.push(Math.max(...rows.map((row) => Number(row.wait_ms))));
      await sleep(Math.max(...rows.map((row) => Number(row.wait_ms))) + 5);
    }
    // 200 × 2^(attempt−1) × [0.5, 1): each attempt's delay bound doubles.
    assert.ok(delays[0]! <= 200 && delays[1]! <= 400 && delays[2]! <= 800, `delays ${delays}`);
    assert.ok(delays[2]! >= 300, `delays ${delays}`);

    await proxy.resetAll(); // the held publishes die with the connection; the client reconnects
    await proxy.resume();
    let published = 0;
    for (let round = 0; round < 100 && published < 20; round++) {
      published += (await r.runOnce()).published;
      await sleep(20);
    }
    assert.equal(published, 20, 'every row published after the outage');
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE state = 'published'`);
    assert.equal(rows[0].n, 20, 'no row lost');
    assert.equal(await stream.count(), 20, 'each message stored once');
  });

  it('stops waiting when the relay aborts, and answers every message as transient', async () => {
    const publisher = jetStreamPublisher({ connection: nc });
    const controller = new AbortController();
    controller.abort(new Error('deadline'));
    await assert.rejects(publisher.publish([] as OutboxMessage[], { signal: controller.signal }), /deadline/);
  });

  it('rejects unknown and invalid options', () => {
    assert.throws(
      () => jetStreamPublisher({ connection: nc, timeout: 5 } as never),
      /unknown option "timeout"/,
    );
    assert.throws(() => jetStreamPublisher({ connection: {} as never }), /NatsConnection/);
    assert.throws(() => jetStreamPublisher({ connection: nc, timeoutMs: 0 }), /timeoutMs/);
  });
});
