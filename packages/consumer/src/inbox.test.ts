// Transactional mode on the real PostgreSQL: the inbox row and the handler's writes commit together,
// concurrent deliveries serialise on the unique key, a reused id is flagged, retention is swept.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isOncelyError } from '@oncely/core';
import type pg from 'pg';
import {
  type ConsumerEvent,
  INBOX_DEFAULTS,
  inbox,
  inboxSchema,
  type Message,
  payloadHash,
} from './index.ts';
import { countRows, dropTables, testPool, uniqueName } from './test-services.ts';

const message = (id: string, payload: unknown = { order: 'o_1', amount: 500 }): Message => ({
  id,
  type: 'order.paid',
  key: 'o_1',
  headers: {},
  payload,
  raw: undefined,
});

describe('inbox (transactional mode)', { timeout: 30_000 }, () => {
  let pool: pg.Pool;
  const table = uniqueName('inbox');
  const invoices = uniqueName('invoices');
  before(async () => {
    pool = await testPool({ max: 20 });
    await inbox({ consumer: 'setup', retentionMs: 1000, table }).migrate(pool);
    await pool.query(
      `CREATE TABLE ${invoices} (id bigserial PRIMARY KEY, consumer text NOT NULL, message_id text NOT NULL)`,
    );
  });
  after(async () => {
    await dropTables(pool, table, invoices);
    await pool.end();
  });

  /** An inbox on the test table, its events, and a handler that writes one invoice per run. */
  const setup = (consumer = uniqueName('c'), extra: Partial<Parameters<typeof inbox>[0]> = {}) => {
    const events: ConsumerEvent[] = [];
    const box = inbox({ consumer, retentionMs: 60_000, table, onEvent: (e) => events.push(e), ...extra });
    let runs = 0;
    const work = async (tx: pg.PoolClient, m: Message) => {
      runs++;
      await tx.query(`INSERT INTO ${invoices} (consumer, message_id) VALUES ($1, $2)`, [consumer, m.id]);
      return 'invoiced';
    };
    return { box, events, work, consumer, runs: () => runs };
  };
  const invoicesOf = (consumer: string) => countRows(pool, invoices, 'consumer = $1', [consumer]);
  const rowsOf = (consumer: string) => countRows(pool, table, 'consumer = $1', [consumer]);

  it('rejects unknown options, a missing retention and bad table names', () => {
    const code = (error: unknown) => isOncelyError(error) && error.code === 'ERR_ONCELY_INVALID_OPTION';
    assert.throws(() => inbox({ consumer: 'a', retentionMs: 1, tabel: 'x' } as never), code);
    assert.throws(() => inbox({ consumer: 'a' } as never), /retentionMs" is required/);
    assert.throws(() => inbox({ consumer: '', retentionMs: 1 }), code);
    assert.throws(() => inbox({ consumer: 'a', retentionMs: 0 }), code);
    assert.throws(() => inbox({ consumer: 'a', retentionMs: 1, table: 'Inbox; DROP' }), code);
    assert.throws(() => inbox({ consumer: 'a', retentionMs: 1, lockTimeoutMs: -1 }), code);
    assert.equal(inbox({ consumer: 'a', retentionMs: 1 }).table, INBOX_DEFAULTS.table);
    assert.match(inboxSchema({ table: 'billing.inbox' }), /CREATE TABLE IF NOT EXISTS "billing"."inbox"/);
  });

  it('migrate is idempotent and safe from many callers at once', async () => {
    const name = uniqueName('inbox_mig');
    try {
      const box = inbox({ consumer: 'm', retentionMs: 1000, table: name });
      await Promise.all(Array.from({ length: 6 }, () => box.migrate(pool)));
      await box.migrate(pool);
      const indexes = await pool.query('SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY 1', [
        name,
      ]);
      assert.deepEqual(
        indexes.rows.map((r) => r.indexname),
        [`${name}_pkey`, `${name}_received_at`],
      );
    } finally {
      await dropTables(pool, name);
    }
  });

  it('a handled message commits its writes with its inbox row; a redelivery is a duplicate', async () => {
    const { box, work, consumer, events, runs } = setup();
    const m = message(uniqueName('msg'));
    assert.deepEqual(await box.handle(pool, m, work), { status: 'processed', value: 'invoiced' });
    assert.deepEqual(await box.handle(pool, m, work), { status: 'duplicate', value: undefined });
    assert.equal(runs(), 1);
    assert.equal(await invoicesOf(consumer), 1);
    const row = await pool.query(`SELECT * FROM ${table} WHERE consumer = $1`, [consumer]);
    assert.equal(row.rows[0].message_id, m.id);
    assert.equal(row.rows[0].payload_hash, payloadHash(m));
    assert.deepEqual(
      events.map((e) => [e.type, e.consumer, e.messageId]),
      [
        ['processed', consumer, m.id],
        ['duplicate', consumer, m.id],
      ],
    );
  });

  it('50 concurrent deliveries of one message id: the handler writes exactly one row', async () => {
    const { box, consumer, events } = setup();
    const m = message(uniqueName('msg'));
    let runs = 0;
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, () =>
        box.handle(pool, m, async (tx) => {
          runs++;
          // Hold the transaction open a while, so the other deliveries pile up on the unique key.
          await tx.query('SELECT pg_sleep(0.1)');
          await tx.query(`INSERT INTO ${invoices} (consumer, message_id) VALUES ($1, $2)`, [consumer, m.id]);
        }),
      ),
    );
    const statuses = outcomes.map((o) => o.status);
    assert.equal(statuses.filter((s) => s === 'processed').length, 1);
    assert.equal(statuses.filter((s) => s === 'duplicate').length, 49);
    assert.equal(runs, 1);
    assert.equal(await invoicesOf(consumer), 1);
    assert.equal(await rowsOf(consumer), 1);
    assert.equal(events.filter((e) => e.type === 'processed').length, 1);
  });

  it('a reused id with another payload is a mismatch: an error event, not processed', async () => {
    const { box, work, consumer, events, runs } = setup();
    const id = uniqueName('msg');
    await box.handle(pool, message(id, { order: 'o_1', amount: 500 }), work);
    // The same payload with its keys in another order is the same message.
    const same = await box.handle(pool, message(id, { amount: 500, order: 'o_1' }), work);
    assert.equal(same.status, 'duplicate');
    const outcome = await box.handle(pool, message(id, { order: 'o_1', amount: 900 }), work);
    assert.equal(outcome.status, 'mismatch');
    assert.ok(outcome.status === 'mismatch' && outcome.error.code === 'ERR_ONCELY_KEY_REUSED');
    assert.equal(runs(), 1);
    assert.equal(await invoicesOf(consumer), 1);
    const mismatch = events.find((e) => e.type === 'mismatch');
    assert.ok(mismatch && isOncelyError(mismatch.error) && mismatch.error.code === 'ERR_ONCELY_KEY_REUSED');
    assert.equal(mismatch.messageId, id);
  });

  it('a handler that throws leaves nothing behind: the redelivery processes once', async () => {
    const { box, work, consumer } = setup();
    const m = message(uniqueName('msg'));
    await assert.rejects(
      box.handle(pool, m, async (tx, msg) => {
        await work(tx, msg);
        throw new Error('the provider is down');
      }),
      /the provider is down/,
    );
    assert.equal(await rowsOf(consumer), 0, 'the inbox row rolled back with the writes');
    assert.equal(await invoicesOf(consumer), 0);
    assert.equal((await box.handle(pool, m, work)).status, 'processed');
    assert.equal(await invoicesOf(consumer), 1);
  });

  it('a handler that swallows an SQL error: rolled back at COMMIT, reported as a failure', async () => {
    const { box, consumer } = setup();
    const m = message(uniqueName('msg'));
    await assert.rejects(
      box.handle(pool, m, async (tx) => {
        await tx.query('SELECT 1/0').catch(() => {});
      }),
      /rolled back at COMMIT/,
    );
    assert.equal(await rowsOf(consumer), 0);
  });

  it('each consumer processes a message once on its own', async () => {
    const a = setup();
    const b = setup();
    const m = message(uniqueName('msg'));
    assert.equal((await a.box.handle(pool, m, a.work)).status, 'processed');
    assert.equal((await b.box.handle(pool, m, b.work)).status, 'processed');
    assert.equal((await a.box.handle(pool, m, a.work)).status, 'duplicate');
    assert.deepEqual([await invoicesOf(a.consumer), await invoicesOf(b.consumer)], [1, 1]);
  });

  it('a redelivery that meets a delivery still in its transaction waits, then is busy past lockTimeoutMs', async () => {
    const { box, work, consumer, events } = setup(undefined, { lockTimeoutMs: 300, retryAfterMs: 250 });
    const m = message(uniqueName('msg'));
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered: () => void = () => {};
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const first = box.handle(pool, m, async (tx, msg) => {
      entered();
      await gate;
      return work(tx, msg);
    });
    await inside;
    const asked = performance.now();
    const second = await box.handle(pool, m, work);
    const waited = performance.now() - asked;
    assert.deepEqual(second, { status: 'busy', retryAfterMs: 250, reason: 'in_progress' });
    assert.ok(waited >= 250 && waited < 2000, `waited ${waited} ms`);
    assert.ok(events.some((e) => e.type === 'busy' && e.delayMs === 250));
    // A redelivery that arrives while the first is committing waits for it and is a duplicate.
    const third = box.handle(pool, m, work);
    await sleep(50);
    release();
    assert.equal((await first).status, 'processed');
    assert.equal((await third).status, 'duplicate');
    assert.equal(await invoicesOf(consumer), 1);
  });

  it('a message without an id is refused before anything is written', async () => {
    const { box, work, consumer } = setup();
    await assert.rejects(
      box.handle(pool, message(''), work),
      (error) => isOncelyError(error) && error.code === 'ERR_ONCELY_KEY_MISSING',
    );
    await assert.rejects(
      box.handle(pool, message('bad\nid'), work),
      (error) => isOncelyError(error) && error.code === 'ERR_ONCELY_KEY_INVALID',
    );
    assert.equal(await rowsOf(consumer), 0);
  });

  it('takes a clock with sub-millisecond precision (received_at is whole ms)', async () => {
    const { box, work, consumer } = setup(undefined, {
      clock: () => performance.timeOrigin + performance.now(),
    });
    assert.equal((await box.handle(pool, message(uniqueName('msg')), work)).status, 'processed');
    assert.equal(await rowsOf(consumer), 1);
  });

  it('says to migrate when the table is missing', async () => {
    const box = inbox({ consumer: 'x', retentionMs: 1000, table: uniqueName('missing') });
    await assert.rejects(
      box.handle(pool, message('m1'), () => {}),
      /does not exist; run inbox\(\)\.migrate\(pool\)/,
    );
  });

  it('sweep deletes rows past retention in batches, and sweepers in parallel split them', async () => {
    let now = 1_000_000;
    const consumer = uniqueName('c');
    const box = inbox({ consumer, retentionMs: 10_000, table, sweepBatchSize: 3, clock: () => now });
    for (let i = 0; i < 10; i++) await box.handle(pool, message(`old-${i}`), () => {});
    now += 8_000;
    for (let i = 0; i < 2; i++) await box.handle(pool, message(`new-${i}`), () => {});
    const other = setup();
    await other.box.handle(pool, message('old-0'), () => {});
    now += 2_001; // the old rows are 10_001 ms old, the new ones 2_001 ms
    const swept = await Promise.all([box.sweep(pool), box.sweep(pool), box.sweep(pool)]);
    assert.equal(
      swept.reduce((a, b) => a + b, 0),
      10,
    );
    assert.equal(await rowsOf(consumer), 2);
    assert.equal(await rowsOf(other.consumer), 1, "another consumer's rows are its own sweep's");
    // Past the window the message is forgotten: a redelivery now would be processed again.
    assert.equal((await box.handle(pool, message('old-3'), () => {})).status, 'processed');
    assert.equal((await box.handle(pool, message('new-1'), () => {})).status, 'duplicate');
  });
});
