import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { jetStreamMessage } from '@oncely/consumer';
import { relay } from '@oncely/outbox';
import { jetStreamPublisher } from '@oncely/outbox/nats';
import { DATABASE_URL, unique } from '@oncely/test-stores';
import { sagaReply } from './protocol.ts';
import { saga } from './saga.ts';
import { harness } from './test-harness.ts';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

it('SIGKILL between committing the saga state and publishing: a relay publishes the command later, once', async (t) => {
  const h = await harness();
  const nc = await connect({ servers: NATS_URL, timeout: 5000 }).catch((error: unknown) => {
    throw new Error(`NATS is not reachable at ${NATS_URL}: ${String(error)}`, { cause: error });
  });
  const jsm = await jetstreamManager(nc);
  const stream = `SAGA_${unique()}`;
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], duplicate_window: 60_000 * 1e6 });
  t.after(async () => {
    await jsm.streams.delete(stream).catch(() => {});
    await nc.close();
    await h.drop();
  });
  const order = saga({
    name: 'order',
    outbox: h.box,
    inbox: h.replies,
    replyTopic: `${stream}.replies`,
    table: h.tables.saga,
    steps: [
      {
        name: 'reserve',
        kind: 'pivot',
        action: { command: () => ({ topic: 'unused', type: 'x', payload: null }) },
      },
    ],
  });
  await order.migrate(h.pool);

  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      new URL('./test-start-worker.ts', import.meta.url).pathname,
      JSON.stringify({ databaseUrl: DATABASE_URL, tables: h.tables, topic: stream, id: 'k1' }),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  assert.equal(chunk.toString().trim(), 'committed');
  child.kill('SIGKILL');
  const [, signal] = await once(child, 'exit');
  assert.equal(signal, 'SIGKILL');

  const state = (await order.get(h.pool, 'k1'))!;
  assert.equal(state.status, 'running');
  assert.equal(state.waiting, 'reply', 'the state says the command was sent');
  assert.equal((await h.box.stats(h.pool)).pending, 1, 'and the command is in the outbox, unpublished');
  assert.equal((await jsm.streams.info(stream)).state.messages, 0);

  const relayed = relay({
    pool: h.pool,
    outbox: h.box,
    publisher: jetStreamPublisher({ connection: nc }),
    registry: null,
    cleanupIntervalMs: 0,
    statsIntervalMs: 0,
  });
  assert.equal((await relayed.runOnce()).published, 1);
  assert.equal((await relayed.runOnce()).claimed, 0, 'published once, not again');
  assert.equal((await jsm.streams.info(stream)).state.messages, 1);

  const consumer = await jetstream(nc).consumers.get(stream);
  const delivery = await consumer.next({ expires: 2000 });
  assert.ok(delivery);
  const command = jetStreamMessage(delivery);
  assert.equal(command.headers['Idempotency-Key'], 'order:k1:reserve', 'the key is forwarded');
  assert.equal(delivery.subject, `${stream}.reserve`);

  // The participant answers; the saga completes.
  const reply = sagaReply(command, { ok: true });
  const outcome = await order.handleReply(h.pool, {
    id: 'r1',
    type: reply.type,
    key: reply.key,
    headers: reply.headers!,
    payload: reply.payload,
    raw: null,
  });
  assert.deepEqual(outcome, { status: 'processed', value: 'advanced' });
  assert.equal((await order.get(h.pool, 'k1'))!.status, 'completed');
});
