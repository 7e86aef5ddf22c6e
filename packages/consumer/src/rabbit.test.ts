// The RabbitMQ subscription against the real broker: the envelope read from properties and headers,
// at-least-once redelivery processed once, a lost ack absorbed, poison dead-lettered after the limit
// (quorum queues count deliveries; classic queues are counted in process), a message without
// messageId refused, and a clean stop.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isOncelyError } from '@oncely/core';
import type amqp from 'amqplib';
import type pg from 'pg';
import { type ConsumerEvent, consumeRabbit, inbox, type Message, rabbitMessage } from './index.ts';
import { countRows, dropTables, eventually, testPool, testRabbit, uniqueName } from './test-services.ts';

describe('consumeRabbit', { timeout: 30_000 }, () => {
  let connection: amqp.ChannelModel;
  let publisher: amqp.ConfirmChannel;
  let admin: amqp.Channel;
  let pool: pg.Pool;
  const table = uniqueName('inbox_amqp');
  const invoices = uniqueName('invoices_amqp');
  const queues: string[] = [];
  const channels: amqp.Channel[] = [];
  before(async () => {
    connection = await testRabbit();
    publisher = await connection.createConfirmChannel();
    admin = await connection.createChannel();
    pool = await testPool({ max: 5 });
    await inbox({ consumer: 'setup', retentionMs: 1000, table }).migrate(pool);
    await pool.query(`CREATE TABLE ${invoices} (id bigserial PRIMARY KEY, message_id text NOT NULL)`);
  });
  after(async () => {
    for (const channel of channels) await channel.close().catch(() => {});
    for (const queue of queues) await admin.deleteQueue(queue).catch(() => {});
    await connection.close();
    await dropTables(pool, table, invoices);
    await pool.end();
  });

  /** A queue of its own that dead-letters to a second queue of its own. */
  const queue = async (type: 'quorum' | 'classic' = 'quorum') => {
    const name = uniqueName('oncely_q');
    const dead = `${name}_dead`;
    queues.push(name, dead);
    await admin.assertQueue(dead, { durable: true });
    await admin.assertQueue(name, {
      durable: true,
      arguments: { 'x-queue-type': type, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead },
    });
    return { name, dead };
  };
  const channel = async () => {
    const ch = await connection.createChannel();
    ch.on('error', () => {});
    channels.push(ch);
    await ch.prefetch(10);
    return ch;
  };
  const publish = async (
    queueName: string,
    id: string | undefined,
    payload: unknown = { order: 'o_1', amount: 500 },
    extra: amqp.Options.Publish = {},
  ) => {
    publisher.sendToQueue(queueName, Buffer.from(JSON.stringify(payload)), {
      ...(id === undefined ? {} : { messageId: id }),
      type: 'order.paid',
      contentType: 'application/json',
      persistent: true,
      headers: { 'oncely-key': 'o_1' },
      ...extra,
    });
    await publisher.waitForConfirms();
  };
  const billing = (fail: (run: number) => boolean = () => false) => {
    const events: ConsumerEvent[] = [];
    const box = inbox({
      consumer: uniqueName('billing'),
      retentionMs: 60_000,
      table,
      onEvent: (e) => events.push(e),
    });
    let runs = 0;
    const handle = (m: Message) =>
      box.handle(pool, m, async (tx) => {
        runs++;
        await tx.query(`INSERT INTO ${invoices} (message_id) VALUES ($1)`, [m.id]);
        if (fail(runs)) throw new Error(`run ${runs} failed`);
      });
    return { box, events, handle, runs: () => runs };
  };
  const count = async (name: string) => (await admin.checkQueue(name)).messageCount;

  it('reads the envelope from properties and headers, and acks once the outcome is durable', async () => {
    const q = await queue();
    const id = uniqueName('msg');
    await publish(
      q.name,
      id,
      { order: 'o_1', amount: 500 },
      {
        headers: { 'oncely-key': 'o_1', 'trace-id': 't-1', attempt: 2 },
      },
    );
    const seen: Message[] = [];
    const sub = await consumeRabbit({
      channel: await channel(),
      queue: q.name,
      handle: async (m) => {
        seen.push(m);
        return { status: 'processed', value: undefined };
      },
    });
    await eventually('handled', () => seen.length === 1);
    await sub.stop();
    const [m] = seen;
    assert.deepEqual(
      { id: m!.id, type: m!.type, key: m!.key, headers: m!.headers, payload: m!.payload },
      {
        id,
        type: 'order.paid',
        key: 'o_1',
        headers: { 'trace-id': 't-1', attempt: '2' },
        payload: { order: 'o_1', amount: 500 },
      },
    );
    assert.equal(await count(q.name), 0, 'acked, not requeued by the stop');
    assert.equal(await sub.closed, undefined);
  });

  it('at least once: a failed delivery is requeued and processed once', async () => {
    const q = await queue();
    const { handle, runs } = billing((run) => run === 1);
    const events: ConsumerEvent[] = [];
    const id = uniqueName('msg');
    await publish(q.name, id);
    const sub = await consumeRabbit({
      channel: await channel(),
      queue: q.name,
      handle,
      retryDelayMs: 50,
      onEvent: (e) => events.push(e),
    });
    await eventually(
      'processed',
      async () => (await countRows(pool, invoices, 'message_id = $1', [id])) === 1,
    );
    await sub.stop();
    assert.equal(runs(), 2);
    assert.equal(await count(q.name), 0);
    const retry = events.find((e) => e.type === 'retry');
    assert.deepEqual([retry?.attempt, retry?.delayMs, retry?.source], [1, 50, `rabbitmq:${q.name}`]);
  });

  it('a delivery processed but never acked (the channel closed) comes back and is a duplicate', async () => {
    const q = await queue();
    const { box, handle, events, runs } = billing();
    const id = uniqueName('msg');
    await publish(q.name, id);
    // The first consumer: processes and commits, then its channel dies before the ack.
    const doomed = await connection.createChannel();
    const first = await doomed.get(q.name, { noAck: false });
    assert.ok(first);
    assert.equal((await box.handle(pool, rabbitMessage(first), async () => {})).status, 'processed');
    await doomed.close();
    const sub = await consumeRabbit({ channel: await channel(), queue: q.name, handle });
    await eventually('redelivered', () => events.some((e) => e.type === 'duplicate'));
    await sub.stop();
    assert.equal(runs(), 0, 'the handler did not run for the redelivery');
    assert.equal(await count(q.name), 0);
    assert.equal(await countRows(pool, invoices, 'message_id = $1', [id]), 0, 'its handler wrote nothing');
  });

  for (const type of ['quorum', 'classic'] as const) {
    it(`poison on a ${type} queue: dead-lettered after maxAttempts deliveries`, async () => {
      const q = await queue(type);
      const { handle, runs } = billing(() => true);
      const events: ConsumerEvent[] = [];
      const id = uniqueName('msg');
      await publish(q.name, id);
      const sub = await consumeRabbit({
        channel: await channel(),
        queue: q.name,
        handle,
        maxAttempts: 3,
        retryDelayMs: 20,
        onEvent: (e) => events.push(e),
      });
      await eventually('dead-lettered', async () => (await count(q.dead)) === 1);
      await sleep(100);
      await sub.stop();
      assert.equal(runs(), 3);
      assert.deepEqual(
        events.filter((e) => e.type !== 'stopped').map((e) => [e.type, e.attempt]),
        [
          ['retry', 1],
          ['retry', 2],
          ['dead_lettered', 3],
        ],
      );
      const dead = await admin.get(q.dead, { noAck: true });
      assert.ok(dead);
      assert.equal(dead.properties.messageId, id);
      assert.equal(dead.properties.headers?.['x-death']?.[0]?.reason, 'rejected');
      assert.equal(await count(q.name), 0);
    });
  }

  it('a message without messageId is refused: dead-lettered, an error event, the handler never sees it', async () => {
    const q = await queue();
    const { handle, runs } = billing();
    const events: ConsumerEvent[] = [];
    const good = uniqueName('msg');
    await publish(q.name, undefined);
    await publish(q.name, good);
    const sub = await consumeRabbit({
      channel: await channel(),
      queue: q.name,
      handle,
      onEvent: (e) => events.push(e),
    });
    await eventually(
      'the good one processed',
      async () => (await countRows(pool, invoices, 'message_id = $1', [good])) === 1,
    );
    await eventually('the bad one dead-lettered', async () => (await count(q.dead)) === 1);
    await sub.stop();
    assert.equal(runs(), 1);
    const refused = events.find((e) => e.type === 'refused');
    assert.ok(refused && isOncelyError(refused.error) && refused.error.code === 'ERR_ONCELY_KEY_MISSING');
  });

  it('stop() lets the handler in flight finish and ack, and gives the rest back', async () => {
    const q = await queue();
    const ids = [uniqueName('msg'), uniqueName('msg'), uniqueName('msg')];
    for (const id of ids) await publish(q.name, id);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const started: string[] = [];
    const sub = await consumeRabbit({
      channel: await channel(),
      queue: q.name,
      handle: async (m) => {
        started.push(m.id);
        await gate;
        return { status: 'processed', value: undefined };
      },
    });
    await eventually('the first is in flight', () => started.length === 1);
    await sleep(50); // the other two have arrived (prefetch 10) and wait their turn
    let stopped = false;
    const stopping = sub.stop().then(() => {
      stopped = true;
    });
    await sleep(100);
    assert.equal(stopped, false, 'stop waits for the handler in flight');
    release();
    await stopping;
    assert.deepEqual(started, [ids[0]]);
    await eventually('the two not started are back in the queue', async () => (await count(q.name)) === 2);
  });

  it('ends when the channel closes, with the reason', async () => {
    const q = await queue();
    const ch = await channel();
    const sub = await consumeRabbit({
      channel: ch,
      queue: q.name,
      handle: async () => ({ status: 'processed', value: undefined }),
    });
    await ch.close();
    const error = await sub.closed;
    assert.match(String(error?.message), /channel consuming .* closed/);
    await sub.stop();
  });
});
