import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectPostgres, unique } from '@oncely/test-stores';
import pg from 'pg';
import { messageId } from './message-id.ts';
import { OUTBOX_DEFAULTS, outbox, outboxSchema } from './outbox.ts';
import { inTransaction, testOutbox } from './test-brokers.ts';

describe('outbox', () => {
  let pool: pg.Pool;
  before(async () => {
    pool = await connectPostgres({ max: 10 });
  });
  after(async () => {
    await pool.end();
  });

  it('migrate() is idempotent and safe from many sessions at once', async (t) => {
    const table = `outbox_test_${unique()}`;
    t.after(() => pool.query(`DROP TABLE IF EXISTS ${table}`));
    const box = outbox({ table });
    await Promise.all(Array.from({ length: 6 }, () => box.migrate(pool)));
    await box.migrate(pool);
    const { rows } = await pool.query(`SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY 1`, [
      table,
    ]);
    assert.deepEqual(
      rows.map((row) => row.indexname),
      [
        `${table}_dead`,
        `${table}_id_key`,
        `${table}_key`,
        `${table}_pending`,
        `${table}_pkey`,
        `${table}_published`,
      ],
    );
  });

  it('migrate() works in a schema of its own, and outboxSchema() gives the same DDL for other tools', async (t) => {
    const schema = `outbox_schema_${unique()}`;
    await pool.query(`CREATE SCHEMA ${schema}`);
    t.after(() => pool.query(`DROP SCHEMA ${schema} CASCADE`));
    const box = outbox({ table: `${schema}.events` });
    await box.migrate(pool);
    await box.migrate(pool);
    await inTransaction(pool, (tx) => box.add(tx, { topic: 'a', key: 'k', type: 't', payload: 1 }));
    const other = `${schema}.by_tool`;
    await pool.query(outboxSchema({ table: other }));
    await pool.query(outboxSchema({ table: other })); // IF NOT EXISTS throughout
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = $1`, [
      schema,
    ]);
    assert.equal(rows[0].n, 12);
    assert.match(outboxSchema(), new RegExp(`CREATE TABLE IF NOT EXISTS "${OUTBOX_DEFAULTS.table}"`));
  });

  it('add() writes in the caller transaction: gone on rollback, there on commit, on a pool client or a Client', async (t) => {
    const { pool: own, box, table, drop } = await testOutbox();
    t.after(drop);
    await assert.rejects(
      inTransaction(own, async (tx) => {
        await box.add(tx, { topic: 'orders.paid', key: 'o1', type: 'order.paid', payload: { a: 1 } });
        throw new Error('rolled back');
      }),
    );
    assert.equal((await own.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n, 0);

    const client = new pg.Client({
      connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    });
    await client.connect();
    t.after(() => client.end());
    await client.query('BEGIN');
    const { id, added } = await box.add(client, {
      topic: 'orders.paid',
      key: 'o1',
      type: 'order.paid',
      payload: { amount: 500, tags: ['a', 'b'], nested: { x: null } },
      headers: { 'x-tenant': 'acme' },
    });
    assert.equal(added, true);
    assert.equal(
      (await own.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n,
      0,
      'invisible before COMMIT',
    );
    await client.query('COMMIT');
    const { rows } = await own.query(`SELECT * FROM ${table}`);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].id, id);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    assert.equal(rows[0].state, 'pending');
    assert.deepEqual(rows[0].payload, { amount: 500, tags: ['a', 'b'], nested: { x: null } });
    assert.deepEqual(rows[0].headers, { 'x-tenant': 'acme' });
  });

  it('an id derived from a business key is stable, and a second add with it writes nothing', async (t) => {
    const { pool: own, box, table, drop } = await testOutbox();
    t.after(drop);
    const message = {
      topic: 'orders.paid',
      key: 'o7',
      type: 'order.paid',
      payload: { v: 1 },
      id: 'order_7:paid',
    };
    const first = await inTransaction(own, (tx) => box.add(tx, message));
    const second = await inTransaction(own, (tx) => box.add(tx, { ...message, payload: { v: 2 } }));
    assert.deepEqual(first, { id: messageId('order_7:paid'), added: true });
    assert.deepEqual(second, { id: first.id, added: false });
    const { rows } = await own.query(`SELECT payload FROM ${table}`);
    assert.deepEqual(rows, [{ payload: { v: 1 } }], 'the first message stands');
  });

  it('producers of one key take turns: per key, seq order is commit order', async (t) => {
    const { pool: own, box, table, drop } = await testOutbox();
    const first = await own.connect();
    const second = await own.connect();
    // Hooks run in the order they were added: the clients go back before drop() ends the pool.
    t.after(() => {
      first.release();
      second.release();
    });
    t.after(drop);
    await first.query('BEGIN');
    await second.query('BEGIN');
    await box.add(first, { topic: 'a', key: 'k', type: 't', payload: 'first' });
    let secondDone = false;
    const blocked = box.add(second, { topic: 'a', key: 'k', type: 't', payload: 'second' }).then((r) => {
      secondDone = true;
      return r;
    });
    // Another key is not held up.
    await inTransaction(own, (tx) => box.add(tx, { topic: 'a', key: 'other', type: 't', payload: 'other' }));
    await sleep(100);
    assert.equal(secondDone, false, 'the second producer of the key waits for the first to finish');
    await first.query('COMMIT');
    await blocked;
    await second.query('COMMIT');
    const { rows } = await own.query(`SELECT payload FROM ${table} WHERE key = 'k' ORDER BY seq`);
    assert.deepEqual(
      rows.map((row) => row.payload),
      ['first', 'second'],
    );
  });

  it('refuses messages a broker could not carry, before they reach the table', async (t) => {
    const { box, drop } = await testOutbox();
    t.after(drop);
    const tx = { query: async () => assert.fail('nothing may be written') } as never;
    const base = { topic: 'orders.paid', key: 'k', type: 't', payload: {} };
    const refused: Array<[Record<string, unknown>, RegExp]> = [
      [{ topic: 'orders.*' }, /"topic"/],
      [{ topic: 'orders..paid' }, /"topic"/],
      [{ topic: 'has space' }, /"topic"/],
      [{ topic: '' }, /"topic"/],
      [{ key: '' }, /"key"/],
      [{ key: 'a\nb' }, /"key"/],
      [{ type: 'x'.repeat(256) }, /"type"/],
      [{ payload: undefined }, /"payload"/],
      [{ payload: { big: 10n } }, /"payload"/],
      [{ headers: { 'Nats-Expected-Stream': 'x' } }, /reserved/],
      [{ headers: { 'oncely-key': 'x' } }, /reserved/],
      [{ headers: { 'content-type': 'text/plain' } }, /reserved/],
      [{ headers: { 'bad name': 'x' } }, /not a token/],
      [{ headers: { ok: 'line\r\nbreak' } }, /CR, LF/],
      [{ headers: { ok: 5 } }, /string/],
      [{ id: '' }, /"id"/],
      [{ extra: 1 }, /unknown field "extra"/],
    ];
    for (const [change, pattern] of refused) {
      await assert.rejects(
        box.add(tx, { ...base, ...change } as never),
        pattern,
        JSON.stringify(change, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)),
      );
    }
  });

  it('lists, requeues and discards dead messages; cleans up old published ones; reports stats', async (t) => {
    const { pool: own, box, table, drop } = await testOutbox();
    t.after(drop);
    const ids: string[] = [];
    await inTransaction(own, async (tx) => {
      for (let i = 0; i < 6; i++)
        ids.push((await box.add(tx, { topic: 'a', key: `k${i}`, type: 't', payload: i })).id);
    });
    // Two dead, two published long ago, one published just now, one pending.
    await own.query(
      `UPDATE ${table} SET state = 'dead', failures = 3, last_error = 'boom' WHERE id = ANY($1)`,
      [ids.slice(0, 2)],
    );
    await own.query(
      `UPDATE ${table} SET state = 'published', published_at = now() - interval '2 hours' WHERE id = ANY($1)`,
      [ids.slice(2, 4)],
    );
    await own.query(`UPDATE ${table} SET state = 'published', published_at = now() WHERE id = $1`, [ids[4]]);
    await own.query(`UPDATE ${table} SET created_at = now() - interval '5 seconds' WHERE id = $1`, [ids[5]]);

    const stats = await box.stats(own);
    assert.equal(stats.pending, 1);
    assert.equal(stats.dead, 2);
    assert.ok(stats.lagMs >= 5000 && stats.lagMs < 60_000, `lag ${stats.lagMs}`);

    const dead = await box.listDead(own);
    assert.deepEqual(
      dead.map((d) => [d.id, d.failures, d.lastError]),
      [
        [ids[0], 3, 'boom'],
        [ids[1], 3, 'boom'],
      ],
    );
    assert.deepEqual(
      (await box.listDead(own, { limit: 1, afterSeq: dead[0]!.seq })).map((d) => d.id),
      [ids[1]],
    );
    assert.equal(await box.requeueDead(own, { ids: [ids[0]!] }), 1);
    assert.equal(await box.discardDead(own, { ids: [ids[0]!, ids[1]!] }), 1, 'only dead ones are discarded');
    const { rows } = await own.query(`SELECT state, failures FROM ${table} WHERE id = $1`, [ids[0]]);
    assert.deepEqual(rows, [{ state: 'pending', failures: 0 }]);

    assert.equal(await box.cleanup(own, { retentionMs: 3_600_000, batchSize: 1 }), 2);
    assert.equal(await box.cleanup(own, { retentionMs: 3_600_000 }), 0);
    const left = await own.query(`SELECT id FROM ${table} ORDER BY seq`);
    assert.deepEqual(
      left.rows.map((row) => row.id),
      [ids[0], ids[4], ids[5]],
    );
    const { pending, dead: deadNow } = await box.stats(own);
    assert.deepEqual({ pending, dead: deadNow }, { pending: 2, dead: 0 });
  });

  it('rejects unknown and invalid options at construction, with no I/O', () => {
    assert.throws(() => outbox({ tabel: 'x' } as never), /unknown option "tabel"/);
    assert.throws(() => outbox({ table: 'Bad-Name' }), /"table" must match/);
    assert.throws(() => outbox({ table: 'a.b.c' }), /one schema at most/);
    assert.throws(() => outbox({ table: 'pg_catalog.x' }), /pg_/);
    assert.throws(() => outbox({ table: 'x'.repeat(53) }), /at most 52/);
    assert.throws(() => outbox({ clock: 5 as never }), /"clock"/);
    assert.throws(() => outbox(null as never), /options object/);
    assert.equal(outbox().table, 'oncely_outbox');
  });
});
