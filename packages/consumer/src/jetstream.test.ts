// The JetStream subscription against the real server: the envelope read from headers, at-least-once
// redelivery processed once, a lost ack absorbed, poison terminated after the limit, a message
// without Nats-Msg-Id refused, slow handlers kept, and a clean stop.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { isOncelyError } from '@oncely/core';
import type pg from 'pg';
import { type ConsumerEvent, consumeJetStream, inbox, jetStreamMessage, type Message } from './index.ts';
import {
  countRows,
  dropTables,
  envelopeHeaders,
  eventually,
  testNats,
  testPool,
  testStream,
  uniqueName,
} from './test-services.ts';

describe('consumeJetStream', { timeout: 30_000 }, () => {
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: Awaited<ReturnType<typeof testNats>>['jsm'];
  let pool: pg.Pool;
  const table = uniqueName('inbox_js');
  const invoices = uniqueName('invoices_js');
  const cleanups: Array<() => Promise<void>> = [];
  before(async () => {
    ({ nc, jsm } = await testNats());
    js = jetstream(nc);
    pool = await testPool({ max: 5 });
    await inbox({ consumer: 'setup', retentionMs: 1000, table }).migrate(pool);
    await pool.query(`CREATE TABLE ${invoices} (id bigserial PRIMARY KEY, message_id text NOT NULL)`);
  });
  after(async () => {
    for (const cleanup of cleanups) await cleanup();
    await dropTables(pool, table, invoices);
    await pool.end();
    await nc.close();
  });

  const stream = async (options: Parameters<typeof testStream>[1] = {}) => {
    const s = await testStream(jsm, options);
    cleanups.push(s.remove);
    return s;
  };
  const publish = (
    subject: string,
    id: string | undefined,
    payload: unknown = { order: 'o_1', amount: 500 },
  ) =>
    js.publish(subject, JSON.stringify(payload), {
      headers: envelopeHeaders({ ...(id === undefined ? {} : { id }), type: 'order.paid', key: 'o_1' }),
    });
  /** An inbox and a handler that writes one invoice per run, counting runs; `fail` decides per run. */
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
  const settled = async (s: Awaited<ReturnType<typeof stream>>) => {
    await eventually('every message settled', async () => {
      const info = await s.info();
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });
  };

  it('reads the envelope from the headers and acks once the outcome is durable', async () => {
    const s = await stream();
    const id = uniqueName('msg');
    const h = envelopeHeaders({ id, type: 'order.paid', key: 'o_1', extra: { 'Trace-Id': 't-1' } });
    await js.publish(s.subject, JSON.stringify({ order: 'o_1', amount: 500 }), { headers: h });
    const seen: Message[] = [];
    const sub = await consumeJetStream({
      consumer: await js.consumers.get(s.stream, s.durable),
      handle: async (m) => {
        seen.push(m);
        return { status: 'processed', value: undefined };
      },
    });
    await settled(s);
    await sub.stop();
    assert.equal(seen.length, 1);
    const [m] = seen;
    assert.deepEqual(
      { id: m!.id, type: m!.type, key: m!.key, headers: m!.headers, payload: m!.payload },
      {
        id,
        type: 'order.paid',
        key: 'o_1',
        headers: { 'Trace-Id': 't-1' },
        payload: { order: 'o_1', amount: 500 },
      },
    );
    assert.equal(await sub.closed, undefined);
  });

  it('at least once: a failed delivery is redelivered and processed once', async () => {
    const s = await stream();
    const { handle, runs } = billing((run) => run === 1);
    const events: ConsumerEvent[] = [];
    const id = uniqueName('msg');
    await publish(s.subject, id);
    const sub = await consumeJetStream({
      consumer: await js.consumers.get(s.stream, s.durable),
      handle,
      retryDelayMs: 50,
      onEvent: (e) => events.push(e),
    });
    await settled(s);
    await sub.stop();
    assert.equal(runs(), 2);
    assert.equal(await countRows(pool, invoices, 'message_id = $1', [id]), 1, 'the failed run left nothing');
    const retry = events.find((e) => e.type === 'retry');
    assert.deepEqual([retry?.attempt, retry?.delayMs, retry?.messageId], [1, 50, id]);
    assert.equal(retry?.source, `jetstream:${s.stream}/${s.durable}`);
  });

  it('a delivery processed but never acked comes back after ack_wait and is a duplicate', async () => {
    const s = await stream({ ackWaitMs: 600 });
    const { box, handle, events, runs } = billing();
    const id = uniqueName('msg');
    await publish(s.subject, id);
    // The first delivery: processed and committed, but its ack is lost.
    const consumer = await js.consumers.get(s.stream, s.durable);
    const first = await consumer.next({ expires: 2000 });
    assert.ok(first);
    assert.equal((await box.handle(pool, jetStreamMessage(first), async () => {})).status, 'processed');
    const sub = await consumeJetStream({ consumer, handle });
    await eventually('redelivered', () => events.some((e) => e.type === 'duplicate'));
    await settled(s);
    await sub.stop();
    assert.equal(runs(), 0, 'the handler did not run for the redelivery');
    assert.deepEqual(
      events.map((e) => e.type),
      ['processed', 'duplicate'],
    );
  });

  it('poison: terminated after maxAttempts deliveries, and never delivered again', async () => {
    const s = await stream();
    const advisories: string[] = [];
    const advisory = nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.${s.stream}.${s.durable}`, {
      callback: (_, msg) => {
        advisories.push(msg.string());
      },
    });
    const { handle, runs } = billing(() => true);
    const events: ConsumerEvent[] = [];
    const id = uniqueName('msg');
    await publish(s.subject, id);
    const sub = await consumeJetStream({
      consumer: await js.consumers.get(s.stream, s.durable),
      handle,
      maxAttempts: 3,
      retryDelayMs: 20,
      onEvent: (e) => events.push(e),
    });
    await eventually('dead-lettered', () => events.some((e) => e.type === 'dead_lettered'));
    await settled(s);
    await eventually('the terminate advisory', () => advisories.length === 1);
    await sleep(1200); // past ack_wait: nothing comes back
    await sub.stop();
    advisory.unsubscribe();
    assert.equal(runs(), 3);
    assert.equal(await countRows(pool, invoices, 'message_id = $1', [id]), 0);
    assert.deepEqual(
      events.map((e) => [e.type, e.attempt]),
      [
        ['retry', 1],
        ['retry', 2],
        ['dead_lettered', 3],
        ['stopped', undefined],
      ],
    );
    const dead = events.find((e) => e.type === 'dead_lettered');
    assert.equal(dead?.reason, 'failed');
    assert.match(String((dead?.error as Error | undefined)?.message), /run 3 failed/);
  });

  it('a message without Nats-Msg-Id is refused: terminated, an error event, the handler never sees it', async () => {
    const s = await stream();
    const { handle, runs } = billing();
    const events: ConsumerEvent[] = [];
    const good = uniqueName('msg');
    await publish(s.subject, undefined);
    await js.publish(s.subject, 'not json', { headers: envelopeHeaders({ id: uniqueName('msg') }) });
    const plain = headers();
    plain.set('Nats-Msg-Id', uniqueName('msg'));
    plain.set('Content-Type', 'text/plain');
    await js.publish(s.subject, '{}', { headers: plain });
    await publish(s.subject, good);
    const sub = await consumeJetStream({
      consumer: await js.consumers.get(s.stream, s.durable),
      handle,
      onEvent: (e) => events.push(e),
    });
    await settled(s);
    await sub.stop();
    assert.equal(runs(), 1, 'only the good message ran');
    assert.equal(await countRows(pool, invoices, 'message_id = $1', [good]), 1);
    const refused = events.filter((e) => e.type === 'refused');
    assert.deepEqual(
      refused.map((e) => isOncelyError(e.error) && e.error.code),
      ['ERR_ONCELY_KEY_MISSING', 'ERR_ONCELY_BODY_AMBIGUOUS', 'ERR_ONCELY_BODY_AMBIGUOUS'],
    );
  });

  it('a reused id with another payload is terminated as a mismatch', async () => {
    // A short duplicate window, so the broker's own dedup lets the second publish through.
    const s = await stream({ duplicateWindowMs: 100 });
    const { handle, runs, events: decisions } = billing();
    const events: ConsumerEvent[] = [];
    const id = uniqueName('msg');
    await publish(s.subject, id, { amount: 500 });
    await sleep(300);
    const second = await publish(s.subject, id, { amount: 900 });
    assert.equal(second.duplicate, false);
    const sub = await consumeJetStream({
      consumer: await js.consumers.get(s.stream, s.durable),
      handle,
      onEvent: (e) => events.push(e),
    });
    await settled(s);
    await sub.stop();
    assert.equal(runs(), 1);
    assert.deepEqual(
      decisions.map((e) => e.type),
      ['processed', 'mismatch'],
    );
    assert.deepEqual(
      events.filter((e) => e.type === 'dead_lettered').map((e) => e.reason),
      ['mismatch'],
    );
  });

  it('a handler slower than ack_wait is kept (working), not redelivered meanwhile', async () => {
    const s = await stream({ ackWaitMs: 600 });
    let runs = 0;
    await publish(s.subject, uniqueName('msg'));
    const sub = await consumeJetStream({
      consumer: await js.consumers.get(s.stream, s.durable),
      handle: async () => {
        runs++;
        await sleep(1500);
        return { status: 'processed', value: undefined };
      },
      concurrency: 2,
    });
    await settled(s);
    await sub.stop();
    assert.equal(runs, 1);
  });

  it('stop() lets the handler in flight finish and ack, and leaves the rest to the next subscriber', async () => {
    const s = await stream();
    const ids = [uniqueName('msg'), uniqueName('msg')];
    for (const id of ids) await publish(s.subject, id);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const started: string[] = [];
    const sub = await consumeJetStream({
      consumer: await js.consumers.get(s.stream, s.durable),
      handle: async (m) => {
        started.push(m.id);
        await gate;
        return { status: 'processed', value: undefined };
      },
    });
    await eventually('the first is in flight', () => started.length === 1);
    let stopped = false;
    const stopping = sub.stop().then(() => {
      stopped = true;
    });
    await sleep(100);
    assert.equal(stopped, false, 'stop waits for the handler in flight');
    release();
    await stopping;
    assert.deepEqual(started, [ids[0]]);
    assert.equal((await s.info()).ack_floor.stream_seq, 1, 'the first is acked');
    assert.equal(await sub.closed, undefined);
    // The second was not started: the next subscriber gets it (at once if it was buffered here and
    // given back; after ack_wait if the server had already sent it to this one's pull request).
    const next: string[] = [];
    const successor = await consumeJetStream({
      consumer: await js.consumers.get(s.stream, s.durable),
      handle: async (m) => {
        next.push(m.id);
        return { status: 'processed', value: undefined };
      },
    });
    await settled(s);
    await successor.stop();
    assert.deepEqual(next, [ids[1]]);
  });

  it('refuses a consumer whose ack policy is not explicit', async () => {
    const s = await stream();
    const name = uniqueName('none');
    await jsm.consumers.add(s.stream, { durable_name: name, ack_policy: 'none' as never });
    await assert.rejects(
      consumeJetStream({
        consumer: await js.consumers.get(s.stream, name),
        handle: async () => ({ status: 'processed', value: undefined }),
      }),
      /ack_policy "explicit"/,
    );
  });
});
