// How much space a record takes: 10,000 typical records written through the store (acquire, then
// complete with a 200-byte JSON response), measured with pg_column_size and pg_total_relation_size.
// The numbers are reported as diagnostics (docs/postgres.md quotes them); the assertions are loose
// bounds that catch a schema change which would blow the size up.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { recordId } from '@oncely/core';
import type pg from 'pg';
import { postgresStore } from './index.ts';
import { dropTables, testPool, uniqueName } from './test-database.ts';

const RECORDS = 10_000;

let pool: pg.Pool;
const table = uniqueName('oncely_size');
before(async () => {
  pool = await testPool({ max: 20 });
});
after(async () => {
  await dropTables(pool, table);
  await pool.end();
});

/** A 200-byte JSON body, like a small payment object. */
function paymentBody(i: number): Uint8Array {
  const base = {
    id: `pay_${randomBytes(8).toString('hex')}`,
    status: 'succeeded',
    amount: 1000 + i,
    currency: 'eur',
    customer: `cus_${randomBytes(6).toString('hex')}`,
    charge_id: `ch_${randomBytes(8).toString('hex')}`,
    note: '',
  };
  const length = Buffer.byteLength(JSON.stringify(base));
  base.note = 'x'.repeat(200 - length);
  const body = new TextEncoder().encode(JSON.stringify(base));
  assert.equal(body.byteLength, 200);
  return body;
}

it(`measures the bytes per record over ${RECORDS} typical records`, { timeout: 120_000 }, async (t) => {
  const store = postgresStore({ pool, table, sweepIntervalMs: 0 });
  await store.migrate();
  const now = Date.now();
  const write = async (i: number): Promise<void> => {
    const id = recordId(`tenant_${i % 100}`, `order_${i}:pay:1`);
    const token = randomBytes(16).toString('hex');
    const acquired = await store.acquire({
      id,
      fingerprint: randomBytes(32).toString('hex'),
      token,
      now,
      leaseUntil: now + 30_000,
      expiresAt: now + 86_400_000,
    });
    assert.equal(acquired.acquired, true);
    const body = paymentBody(i);
    const response = {
      status: 201,
      headers: [
        ['content-type', 'application/json; charset=utf-8'],
        ['location', `/payments/pay_${i}`],
      ] as Array<[string, string]>,
      body,
    };
    assert.equal(await store.complete({ id, token, response, now, expiresAt: now + 86_400_000 }), true);
  };
  for (let i = 0; i < RECORDS; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => write(i + j)));
  }

  const measure = async () => {
    const { rows } = await pool.query(
      `SELECT avg(pg_column_size(r.*))::int AS row_bytes,
              avg(pg_column_size(r.body))::int AS body_bytes,
              avg(pg_column_size(r.headers))::int AS headers_bytes,
              pg_relation_size($1::regclass) AS heap,
              pg_indexes_size($1::regclass) AS indexes,
              pg_total_relation_size($1::regclass) AS total,
              count(*)::int AS n
       FROM ${table} AS r`,
      [table],
    );
    const m = rows[0];
    return {
      row: m.row_bytes as number,
      body: m.body_bytes as number,
      headers: m.headers_bytes as number,
      heapPerRecord: Math.round(Number(m.heap) / m.n),
      indexesPerRecord: Math.round(Number(m.indexes) / m.n),
      totalPerRecord: Math.round(Number(m.total) / m.n),
      n: m.n as number,
    };
  };
  // As written: every record was inserted, then updated once by complete (a non-HOT update, since
  // expires_at is indexed), so the heap and the indexes still hold the dead versions.
  const written = await measure();
  await pool.query(`VACUUM ${table}`);
  // VACUUM FULL rewrites the table compactly: the floor, what a table in steady state approaches
  // once freed space is reused by new records.
  await pool.query(`VACUUM FULL ${table}`);
  const compact = await measure();
  assert.equal(compact.n, RECORDS);
  t.diagnostic(`as written: ${JSON.stringify(written)}`);
  t.diagnostic(`compacted:  ${JSON.stringify(compact)}`);
  assert.ok(compact.row > 400 && compact.row < 600, `row ${compact.row} bytes`);
  assert.ok(compact.totalPerRecord < 1000, `total ${compact.totalPerRecord} bytes per record`);
});
