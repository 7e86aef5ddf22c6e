import assert from 'node:assert/strict';
import { it } from 'node:test';
import { DATABASE_URL } from '@oncely/test-stores';
import { NATS_MSG_ID_HEADER } from './envelope.ts';
import { jetStreamPublisher } from './nats.ts';
import type { Publisher } from './publisher.ts';
import { type BatchOutcome, relay } from './relay.ts';
import {
  connectNats,
  eventually,
  inTransaction,
  NATS_URL,
  startChild,
  testOutbox,
  testStream,
} from './test-brokers.ts';

it('a relay SIGKILLed between the broker confirmation and its mark: republished with the same ids, dropped by JetStream', async (t) => {
  const nc = await connectNats();
  const { pool, box, table, drop } = await testOutbox();
  const stream = await testStream(nc, { duplicateWindowMs: 60_000 });
  t.after(async () => {
    await stream.remove();
    await nc.close();
    await drop();
  });
  const ids: string[] = [];
  await inTransaction(pool, async (tx) => {
    for (let i = 0; i < 5; i++) {
      ids.push(
        (await box.add(tx, { topic: stream.subject('orders'), key: `order_${i}`, type: 't', payload: { i } }))
          .id,
      );
    }
  });

  // Long enough that the survivor's first look surely falls inside it, even on a loaded machine.
  const leaseMs = 1500;
  const worker = startChild(new URL('./test-relay-worker.ts', import.meta.url), {
    mode: 'crash',
    databaseUrl: DATABASE_URL,
    natsUrl: NATS_URL,
    table,
    leaseMs,
  });
  const confirmed = JSON.parse((await worker.line('confirmed ')).slice('confirmed '.length)) as string[];
  worker.child.kill('SIGKILL');
  assert.equal(await worker.exited, 'SIGKILL');
  assert.deepEqual([...confirmed].sort(), [...ids].sort(), 'the broker confirmed the whole batch');
  assert.equal(await stream.count(), 5, 'the broker has them');
  const { rows: claimed } = await pool.query(
    `SELECT count(*)::int AS n FROM ${table} WHERE state = 'pending' AND claim_token IS NOT NULL`,
  );
  assert.equal(claimed[0].n, 5, 'but the dead relay never marked them');

  const inner = jetStreamPublisher({ connection: nc });
  const republished: string[] = [];
  const publisher: Publisher = {
    async publish(messages, options) {
      republished.push(...messages.map((m) => m.id));
      return inner.publish(messages, options);
    },
  };
  const survivor = relay({
    pool,
    outbox: box,
    publisher,
    registry: null,
    cleanupIntervalMs: 0,
    statsIntervalMs: 0,
  });
  assert.equal((await survivor.runOnce()).claimed, 0, 'nobody takes them over while the lease holds');
  let outcome: BatchOutcome | undefined;
  await eventually(
    'the lease lapsed and the survivor took the batch over',
    async () => {
      outcome = await survivor.runOnce();
      return outcome.claimed > 0;
    },
    leaseMs * 10,
  );
  assert.equal(outcome!.published, 5);
  assert.equal(outcome!.duplicates, 5, 'every PubAck says duplicate');
  assert.deepEqual([...republished].sort(), [...ids].sort(), 'republished with the same ids');
  assert.equal(await stream.count(), 5, 'JetStream dropped the republishes: still one message per id');
  const stored = await stream.messages();
  assert.deepEqual(stored.map((m) => m.headers?.get(NATS_MSG_ID_HEADER)).sort(), [...ids].sort());
  const { rows } = await pool.query(`SELECT state, attempts, failures FROM ${table}`);
  for (const row of rows) assert.deepEqual(row, { state: 'published', attempts: 2, failures: 1 });
});
