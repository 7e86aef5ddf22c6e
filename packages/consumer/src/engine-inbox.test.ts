// Engine mode on the Oncely engine (memory store here; across processes on PostgreSQL in
// engine-multiprocess.test.ts): a redelivery replays, a reused id is flagged, a concurrent
// redelivery is busy (or waits, with concurrency: 'wait'), a failure frees the key.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createOncely, isOncelyError, memoryStore, type Store } from '@oncely/core';
import { type ConsumerEvent, engineInbox, type Message } from './index.ts';

const message = (id: string, payload: unknown = { order: 'o_1', amount: 500 }): Message => ({
  id,
  type: 'order.paid',
  key: 'o_1',
  headers: {},
  payload,
  raw: undefined,
});

/** A deferred: a promise and the function that settles it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

function setup(options: { concurrency?: 'reject' | 'wait'; store?: Store; consumer?: string } = {}) {
  const events: ConsumerEvent[] = [];
  const store = options.store ?? memoryStore();
  const oncely = createOncely({
    store,
    ...(options.concurrency ? { concurrency: options.concurrency } : {}),
  });
  const mail = engineInbox({
    oncely,
    consumer: options.consumer ?? 'receipts',
    onEvent: (e) => events.push(e),
  });
  let sent = 0;
  const send = async (m: Message) => {
    sent++;
    return { receipt: `rcpt_${m.id}`, n: sent };
  };
  return { oncely, mail, events, send, sent: () => sent };
}

describe('engineInbox (engine mode)', () => {
  it('rejects an engine with failOpen, unknown options and a missing consumer', () => {
    const code = (error: unknown) => isOncelyError(error) && error.code === 'ERR_ONCELY_INVALID_OPTION';
    const oncely = createOncely({ store: memoryStore() });
    assert.throws(
      () => engineInbox({ oncely: createOncely({ store: memoryStore(), failOpen: true }), consumer: 'a' }),
      /failOpen/,
    );
    assert.throws(() => engineInbox({ oncely, consumer: 'a', scope: 'x' } as never), code);
    assert.throws(() => engineInbox({ oncely, consumer: '' }), code);
    assert.throws(() => engineInbox({ oncely: {} as never, consumer: 'a' }), code);
  });

  it('a redelivery after completion replays the recorded result; the effect happens once', async () => {
    const { mail, events, send, sent } = setup();
    const m = message('msg-1');
    const first = await mail.handle(m, send);
    assert.deepEqual(first, { status: 'processed', value: { receipt: 'rcpt_msg-1', n: 1 } });
    const again = await mail.handle(m, send);
    assert.deepEqual(again, { status: 'duplicate', value: { receipt: 'rcpt_msg-1', n: 1 } });
    assert.equal(sent(), 1);
    assert.deepEqual(
      events.map((e) => [e.type, e.consumer, e.messageId]),
      [
        ['processed', 'receipts', 'msg-1'],
        ['duplicate', 'receipts', 'msg-1'],
      ],
    );
  });

  it('a reused id with another payload is flagged (ERR_ONCELY_KEY_REUSED), not processed', async () => {
    const { mail, events, send, sent } = setup();
    await mail.handle(message('msg-1'), send);
    const outcome = await mail.handle(message('msg-1', { order: 'o_1', amount: 900 }), send);
    assert.equal(outcome.status, 'mismatch');
    assert.ok(outcome.status === 'mismatch' && outcome.error.code === 'ERR_ONCELY_KEY_REUSED');
    assert.equal(sent(), 1);
    const event = events.find((e) => e.type === 'mismatch');
    assert.ok(event && isOncelyError(event.error) && event.error.code === 'ERR_ONCELY_KEY_REUSED');
  });

  it('a redelivery while the first still runs is busy (nak for later), then replays', async () => {
    const { mail, events, send, sent } = setup();
    const m = message('msg-1');
    const hold = gate();
    const first = mail.handle(m, async (msg) => {
      await hold.promise;
      return send(msg);
    });
    const second = await mail.handle(m, send);
    assert.deepEqual(second, { status: 'busy', retryAfterMs: 1000, reason: 'in_progress' });
    assert.ok(events.some((e) => e.type === 'busy' && e.delayMs === 1000));
    hold.open();
    assert.equal((await first).status, 'processed');
    assert.equal((await mail.handle(m, send)).status, 'duplicate');
    assert.equal(sent(), 1);
  });

  it("with the engine's concurrency: 'wait', the redelivery waits for the first and replays", async () => {
    const { mail, send, sent } = setup({ concurrency: 'wait' });
    const m = message('msg-1');
    const hold = gate();
    const first = mail.handle(m, async (msg) => {
      await hold.promise;
      return send(msg);
    });
    const second = mail.handle(m, send);
    setTimeout(hold.open, 100);
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.status, 'processed');
    assert.deepEqual(b, { status: 'duplicate', value: { receipt: 'rcpt_msg-1', n: 1 } });
    assert.equal(sent(), 1);
  });

  it('a failing effect frees the key: the redelivery runs it again', async () => {
    const { mail, send, sent } = setup();
    const m = message('msg-1');
    await assert.rejects(
      mail.handle(m, () => {
        throw new Error('SMTP 451');
      }),
      /SMTP 451/,
    );
    assert.equal((await mail.handle(m, send)).status, 'processed');
    assert.equal(sent(), 1);
  });

  it('each consumer name is a scope of its own', async () => {
    const store = memoryStore();
    const a = setup({ store, consumer: 'receipts' });
    const b = setup({ store, consumer: 'analytics' });
    assert.equal((await a.mail.handle(message('msg-1'), a.send)).status, 'processed');
    assert.equal((await b.mail.handle(message('msg-1'), b.send)).status, 'processed');
    assert.equal((await a.mail.handle(message('msg-1'), a.send)).status, 'duplicate');
  });

  it('a store that is down: busy, nothing runs (fault injected)', async () => {
    const real = memoryStore();
    const down: Store = { ...real, acquire: () => Promise.reject(new Error('ECONNREFUSED')) };
    const { mail, send, sent } = setup({ store: down });
    const outcome = await mail.handle(message('msg-1'), send);
    assert.deepEqual(outcome, { status: 'busy', retryAfterMs: 1000, reason: 'store_unavailable' });
    assert.equal(sent(), 0);
  });

  it('an outcome not yet recorded is busy (no ack), and replays once the engine has recorded it (fault injected)', async () => {
    const real = memoryStore();
    let failures = 1;
    const flaky: Store = {
      ...real,
      acquire: (input) => real.acquire(input),
      get: (input) => real.get(input),
      extend: (input) => real.extend(input),
      release: (input) => real.release(input),
      complete: (input) => (failures-- > 0 ? Promise.reject(new Error('ETIMEDOUT')) : real.complete(input)),
    };
    const { oncely, mail, send, sent } = setup({ store: flaky });
    const m = message('msg-1');
    const outcome = await mail.handle(m, send);
    assert.deepEqual(outcome, { status: 'busy', retryAfterMs: 1000, reason: 'not_recorded' });
    await oncely.drain();
    assert.deepEqual(await mail.handle(m, send), {
      status: 'duplicate',
      value: { receipt: 'rcpt_msg-1', n: 1 },
    });
    assert.equal(sent(), 1);
  });

  it('a message without an id is refused, the effect never runs', async () => {
    const { mail, send, sent } = setup();
    await assert.rejects(
      mail.handle(message(''), send),
      (error) => isOncelyError(error) && error.code === 'ERR_ONCELY_KEY_MISSING',
    );
    assert.equal(sent(), 0);
  });
});
