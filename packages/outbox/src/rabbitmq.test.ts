import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { faultProxy } from '@oncely/test-stores';
import amqp from 'amqplib';
import { AMQP_KEY_HEADER, CONTENT_TYPE } from './envelope.ts';
import { rabbitMqPublisher } from './rabbitmq.ts';
import { relay } from './relay.ts';
import { AMQP_URL, connectAmqp, inTransaction, testExchange, testOutbox } from './test-brokers.ts';

const quiet = { registry: null, cleanupIntervalMs: 0, statsIntervalMs: 0 } as const;

describe('RabbitMQ publisher', () => {
  let connection: amqp.ChannelModel;
  before(async () => {
    connection = await connectAmqp();
  });
  after(async () => {
    await connection.close();
  });

  it('publishes nothing for a rolled-back transaction, and a committed message once with the envelope', async (t) => {
    const { pool, box, drop } = await testOutbox();
    const target = await testExchange(connection);
    const publisher = rabbitMqPublisher({ connection, exchange: target.exchange });
    t.after(async () => {
      await publisher.close();
      await target.remove();
      await drop();
    });
    const r = relay({ pool, outbox: box, publisher, ...quiet });
    await assert.rejects(
      inTransaction(pool, async (tx) => {
        await box.add(tx, { topic: 'bound.orders.paid', key: 'order_1', type: 'order.paid', payload: 1 });
        throw new Error('rolled back');
      }),
    );
    assert.equal((await r.runOnce()).claimed, 0);
    assert.equal(await target.depth(), 0);

    const { id } = await inTransaction(pool, (tx) =>
      box.add(tx, {
        topic: 'bound.orders.paid',
        key: 'order_1',
        type: 'order.paid',
        payload: { orderId: 'order_1', amount: 500 },
        headers: { 'x-tenant': 'acme' },
      }),
    );
    assert.equal((await r.runOnce()).published, 1);
    assert.equal((await r.runOnce()).claimed, 0);
    const [message, ...rest] = await target.take(1);
    await sleep(20);
    assert.equal(rest.length + (await target.depth()), 0, 'published once');
    assert.equal(message!.fields.exchange, target.exchange);
    assert.equal(message!.fields.routingKey, 'bound.orders.paid');
    assert.equal(message!.properties.messageId, id);
    assert.equal(message!.properties.type, 'order.paid');
    assert.equal(message!.properties.contentType, CONTENT_TYPE);
    assert.equal(message!.properties.deliveryMode, 2, 'persistent');
    assert.deepEqual(message!.properties.headers, { [AMQP_KEY_HEADER]: 'order_1', 'x-tenant': 'acme' });
    assert.deepEqual(JSON.parse(message!.content.toString('utf8')), { orderId: 'order_1', amount: 500 });
  });

  it('an unroutable message (returned) is an error for that message: dead after the limit, holding its key back until requeued', async (t) => {
    const { pool, box, drop } = await testOutbox();
    const target = await testExchange(connection);
    const publisher = rabbitMqPublisher({ connection, exchange: target.exchange });
    t.after(async () => {
      await publisher.close();
      await target.remove();
      await drop();
    });
    const r = relay({
      pool,
      outbox: box,
      publisher,
      maxFailures: 3,
      backoffBaseMs: 1,
      backoffMaxMs: 2,
      ...quiet,
    });
    await inTransaction(pool, async (tx) => {
      await box.add(tx, { topic: 'unbound.orders', key: 'order_1', type: 'first', payload: 1 });
      await box.add(tx, { topic: 'bound.orders', key: 'order_1', type: 'second', payload: 2 });
      await box.add(tx, { topic: 'bound.orders', key: 'order_2', type: 'other', payload: 3 });
    });
    const first = await r.runOnce();
    assert.deepEqual(
      { claimed: first.claimed, published: first.published, retried: first.retried },
      {
        claimed: 2,
        published: 1,
        retried: 1,
      },
    );
    for (let i = 0; i < 2; i++) {
      await sleep(5);
      const next = await r.runOnce();
      assert.equal(next.claimed, 1, 'only the head of order_1: its second message waits');
    }
    const dead = await box.listDead(pool);
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.type, 'first');
    assert.equal(dead[0]!.failures, 3);
    assert.match(dead[0]!.lastError!, /unroutable: .*routing key "unbound\.orders".*312 NO_ROUTE/);
    await sleep(5);
    assert.equal((await r.runOnce()).claimed, 0, "a dead message holds its key's later messages back");
    assert.equal((await box.stats(pool)).dead, 1);

    // The operator fixes the routing, then requeues: the key's messages go out, in order.
    const ch = await connection.createChannel();
    await ch.bindQueue(target.queue, target.exchange, 'unbound.#');
    await ch.close();
    assert.equal(await box.requeueDead(pool), 1);
    assert.equal((await r.runOnce()).published, 1);
    assert.equal((await r.runOnce()).published, 1);
    const got = await target.take(3);
    assert.deepEqual(
      got.map((m) => m.properties.type),
      ['other', 'first', 'second'],
    );
  });

  it('a missing exchange closes the channel: transient, and the next batch opens a new channel', async (t) => {
    const { pool, box, drop } = await testOutbox();
    const target = await testExchange(connection);
    const exchange = `${target.exchange}_later`;
    const publisher = rabbitMqPublisher({ connection, exchange });
    const ch = await connection.createChannel();
    t.after(async () => {
      await ch.deleteExchange(exchange).catch(() => {});
      await ch.close().catch(() => {});
      await publisher.close();
      await target.remove();
      await drop();
    });
    const r = relay({
      pool,
      outbox: box,
      publisher,
      maxFailures: 1,
      backoffBaseMs: 1,
      backoffMaxMs: 1,
      ...quiet,
    });
    await inTransaction(pool, (tx) => box.add(tx, { topic: 'bound.x', key: 'k', type: 't', payload: 1 }));
    const failed = await r.runOnce();
    assert.equal(failed.retried, 1, 'transient: not dead, though maxFailures is 1');
    await ch.assertExchange(exchange, 'topic', { durable: false });
    await ch.bindExchange(target.exchange, exchange, '#');
    await sleep(5);
    assert.equal((await r.runOnce()).published, 1);
    assert.equal((await target.take(1)).length, 1);
  });

  it('broker unreachable (paused, then connections reset): retried, then every row published on the recovered connection', async (t) => {
    const { pool, box, table, drop } = await testOutbox();
    const target = await testExchange(connection);
    const proxy = await faultProxy({ host: '127.0.0.1', port: Number(new URL(AMQP_URL).port || 5672) });
    const recovering = await amqp.connect(proxy.url(AMQP_URL), {
      recovery: { initialDelay: 20, maxDelay: 100, jitter: 0 },
    });
    recovering.on('error', () => {});
    const publisher = rabbitMqPublisher({ connection: recovering, exchange: target.exchange });
    t.after(async () => {
      await publisher.close();
      await recovering.close().catch(() => {});
      await proxy.close();
      await target.remove();
      await drop();
    });
    const r = relay({
      pool,
      outbox: box,
      publisher,
      publishTimeoutMs: 300,
      backoffBaseMs: 20,
      backoffMaxMs: 100,
      maxFailures: 1,
      ...quiet,
    });
    const ids = new Set<string>();
    await inTransaction(pool, async (tx) => {
      for (let i = 0; i < 30; i++) {
        ids.add((await box.add(tx, { topic: 'bound.x', key: `k${i % 10}`, type: 't', payload: { i } })).id);
      }
    });
    proxy.pause();
    const first = await r.runOnce();
    assert.equal(first.claimed, 10);
    assert.equal(first.retried, 10, 'no confirmation in time: every message transient');
    await proxy.resetAll(); // the held frames die with the connection; amqplib reconnects
    const second = await r.runOnce().catch(() => undefined);
    await proxy.resume();
    let published = 0;
    for (let round = 0; round < 200 && published < 30; round++) {
      published += (await r.runOnce()).published;
      await sleep(10);
    }
    assert.equal(
      published,
      30,
      `every row published after the outage (second batch: ${JSON.stringify(second)})`,
    );
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n, max(failures) AS f FROM ${table} WHERE state = 'published'`,
    );
    assert.deepEqual(rows[0], { n: 30, f: 0 }, 'no row lost, no failure counted');
    const seen = new Set((await target.take(30)).map((m) => m.properties.messageId as string));
    assert.deepEqual([...seen].sort(), [...ids].sort(), 'every id reached the queue');
  });

  it('rejects unknown and invalid options', () => {
    assert.throws(
      () => rabbitMqPublisher({ connection, exchanges: 'x' } as never),
      /unknown option "exchanges"/,
    );
    assert.throws(() => rabbitMqPublisher({ connection: {} as never }), /createConfirmChannel/);
    assert.throws(() => rabbitMqPublisher({ connection, exchange: 5 as never }), /"exchange"/);
  });
});
