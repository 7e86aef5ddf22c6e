// Engine mode across processes sharing a PostgreSQL store: two processes get the same message at
// once, a third gets its redelivery later. The external effect (a charge at a fake payment
// provider, counted) happens once; the redelivery replays the first charge.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createOncely } from '@oncely/core';
import { postgresStore } from '@oncely/postgres';
import type pg from 'pg';
import { type ConsumerEvent, engineInbox, type Message } from './index.ts';
import type { EngineWorkerConfig } from './test-engine-worker.ts';
import { dropTables, startChild, testPool, uniqueName } from './test-services.ts';

const worker = new URL('./test-engine-worker.ts', import.meta.url).pathname;

describe('engine mode across processes', { timeout: 30_000 }, () => {
  let pool: pg.Pool;
  let psp: Server;
  let pspUrl: string;
  const calls: string[] = [];
  const table = uniqueName('oncely_consumer_engine');
  before(async () => {
    pool = await testPool({ max: 5 });
    await postgresStore({ pool, table, sweepIntervalMs: 0 }).migrate();
    // The payment provider: slow enough that two deliveries of one message overlap.
    psp = createServer((req, res) => {
      calls.push(String(req.headers['idempotency-key']));
      req.resume();
      setTimeout(() => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ charge: `ch_${calls.length}` }));
      }, 400);
    });
    await new Promise<void>((resolve) => psp.listen(0, '127.0.0.1', resolve));
    pspUrl = `http://127.0.0.1:${(psp.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => psp.close(resolve));
    await dropTables(pool, table);
    await pool.end();
  });

  it('two processes at once and a redelivery later: one charge, replayed', async () => {
    const namespace = uniqueName('ns');
    const consumer = 'charges';
    const message = { id: uniqueName('msg'), type: 'order.placed', payload: { order: 'o_1', amount: 500 } };
    const config: EngineWorkerConfig = {
      table,
      namespace,
      consumer,
      pspUrl,
      message,
      startAt: Date.now() + 1500,
    };
    const a = startChild(worker, config);
    const b = startChild(worker, config);
    const outcomes = await Promise.all(
      [a, b].map(async (child) => JSON.parse((await child.line('outcome')).slice('outcome '.length))),
    );
    await Promise.all([a.exited, b.exited]);
    const statuses = outcomes.map((o) => o.status).sort();
    assert.equal(statuses.filter((s) => s === 'processed').length, 1, JSON.stringify(outcomes));
    // The other one overlapped the first (busy: nak'd for later) or, if it started late, replayed.
    assert.ok(
      ['busy', 'duplicate'].includes(statuses.find((s) => s !== 'processed')!),
      JSON.stringify(outcomes),
    );
    assert.deepEqual(calls.filter((key) => key === message.id).length, 1, 'one charge');
    const charged = outcomes.find((o) => o.status === 'processed').value;

    // The redelivery, in this (third) process, on the same store.
    const store = postgresStore({ pool, table, namespace, sweepIntervalMs: 0 });
    const events: ConsumerEvent[] = [];
    const charges = engineInbox({
      oncely: createOncely({ store }),
      consumer,
      onEvent: (e) => events.push(e),
    });
    let ran = 0;
    const redelivered: Message = { ...message, key: undefined, headers: {}, raw: undefined };
    const outcome = await charges.handle(redelivered, () => {
      ran++;
      return { charge: 'never' };
    });
    assert.deepEqual(outcome, { status: 'duplicate', value: charged });
    assert.equal(ran, 0);
    assert.deepEqual(
      events.map((e) => e.type),
      ['duplicate'],
    );
    // The same id with another payload, from yet another producer: flagged, not charged.
    const reused = await charges.handle({ ...redelivered, payload: { order: 'o_1', amount: 5000 } }, () => {
      ran++;
    });
    assert.equal(reused.status, 'mismatch');
    assert.equal(ran, 0);
    assert.equal(calls.filter((key) => key === message.id).length, 1, 'still one charge');
    await store.close();
  });
});
