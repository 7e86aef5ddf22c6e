// Real crashes in transactional mode, on the real JetStream and PostgreSQL: a child process takes a
// delivery, handles it, and is SIGKILLed before COMMIT or after COMMIT but before its ack. The
// redelivery that follows (after ack_wait) leaves exactly one invoice either way.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type pg from 'pg';
import { type ConsumerEvent, consumeJetStream, inbox } from './index.ts';
import type { InboxCrashConfig } from './test-inbox-worker.ts';
import {
  countRows,
  dropTables,
  envelopeHeaders,
  eventually,
  startChild,
  testNats,
  testPool,
  testStream,
  uniqueName,
} from './test-services.ts';

const worker = new URL('./test-inbox-worker.ts', import.meta.url).pathname;

describe('transactional mode, crashes', { timeout: 30_000 }, () => {
  let pool: pg.Pool;
  let nc: NatsConnection;
  let jsm: Awaited<ReturnType<typeof testNats>>['jsm'];
  const table = uniqueName('inbox_crash');
  const invoices = uniqueName('invoices_crash');
  const children: ChildProcess[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  before(async () => {
    pool = await testPool({ max: 5 });
    ({ nc, jsm } = await testNats());
    await inbox({ consumer: 'setup', retentionMs: 1000, table }).migrate(pool);
    await pool.query(`CREATE TABLE ${invoices} (id bigserial PRIMARY KEY, message_id text NOT NULL)`);
  });
  after(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const cleanup of cleanups) await cleanup();
    await dropTables(pool, table, invoices);
    await pool.end();
    await nc.close();
  });

  /** Publish one message, let a child take it and die at `mode`; then consume the redelivery here. */
  async function crashThenRedeliver(mode: InboxCrashConfig['mode']) {
    const s = await testStream(jsm, { ackWaitMs: 1000 });
    cleanups.push(s.remove);
    const consumer = uniqueName('billing');
    const id = uniqueName('msg');
    await jetstream(nc).publish(s.subject, JSON.stringify({ order: 'o_1', amount: 500 }), {
      headers: envelopeHeaders({ id, type: 'order.paid', key: 'o_1' }),
    });
    const config: InboxCrashConfig = {
      mode,
      stream: s.stream,
      durable: s.durable,
      table,
      invoices,
      consumer,
    };
    const child = startChild(worker, config);
    children.push(child.child);
    const said = await child.line(mode === 'before-commit' ? 'inserted' : 'committed');
    if (mode === 'before-commit') {
      const pid = Number(said.split(' ')[1]);
      const state = await pool.query('SELECT state FROM pg_stat_activity WHERE pid = $1', [pid]);
      assert.equal(state.rows[0]?.state, 'idle in transaction', 'killed with its transaction open');
    }
    child.child.kill('SIGKILL');
    assert.equal(await child.exited, 'SIGKILL');
    const afterKill = {
      inbox: await countRows(pool, table, 'consumer = $1', [consumer]),
      invoices: await countRows(pool, invoices, 'message_id = $1', [id]),
    };

    // The survivor: the same consumer name, subscribed to the same durable.
    const events: ConsumerEvent[] = [];
    const box = inbox({ consumer, retentionMs: 60_000, table, onEvent: (e) => events.push(e) });
    let runs = 0;
    const sub = await consumeJetStream({
      consumer: await jetstream(nc).consumers.get(s.stream, s.durable),
      handle: (m) =>
        box.handle(pool, m, async (tx) => {
          runs++;
          await tx.query(`INSERT INTO ${invoices} (message_id) VALUES ($1)`, [m.id]);
        }),
    });
    await eventually('the redelivery is decided', () =>
      events.some((e) => e.type === 'processed' || e.type === 'duplicate'),
    );
    await eventually('the redelivery is acked', async () => (await s.info()).num_ack_pending === 0);
    await sub.stop();
    const info = await s.info();
    return {
      afterKill,
      runs,
      events: events.map((e) => e.type),
      invoices: await countRows(pool, invoices, 'message_id = $1', [id]),
      inbox: await countRows(pool, table, 'consumer = $1', [consumer]),
      pending: info.num_pending + info.num_ack_pending,
    };
  }

  it('SIGKILL after the handler wrote, before COMMIT: nothing recorded; the redelivery processes once', async () => {
    const result = await crashThenRedeliver('before-commit');
    assert.deepEqual(result.afterKill, { inbox: 0, invoices: 0 }, 'the open transaction rolled back');
    assert.deepEqual(result.events, ['processed']);
    assert.equal(result.runs, 1);
    assert.deepEqual([result.invoices, result.inbox, result.pending], [1, 1, 0]);
  });

  it('SIGKILL after COMMIT, before the ack: the redelivery is a duplicate, no second effect', async () => {
    const result = await crashThenRedeliver('before-ack');
    assert.deepEqual(result.afterKill, { inbox: 1, invoices: 1 }, 'committed together');
    assert.deepEqual(result.events, ['duplicate']);
    assert.equal(result.runs, 0, 'the handler did not run again');
    assert.deepEqual([result.invoices, result.inbox, result.pending], [1, 1, 0]);
  });
});
