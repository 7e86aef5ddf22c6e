import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Message } from '@oncely/consumer';
import type { StepDefinition } from './definition.ts';
import type { StepReply } from './protocol.ts';
import { SAGA_DEFAULTS, type Saga } from './saga.ts';
import { type Behaviour, effects, harness, participant, pump, testSaga } from './test-harness.ts';

const ok: Behaviour = (command) => ({ ok: true, result: { by: command.step } });

/** record (local, compensatable) → reserve (compensatable) → charge (pivot) → ship (retriable). */
function orderSteps(effectsTable: string): StepDefinition[] {
  const command = (topic: string) => ({
    command: (c: { data: unknown }) => ({ topic, type: topic, payload: c.data as never }),
  });
  return [
    {
      name: 'record',
      kind: 'compensatable',
      action: {
        local: async (tx, c) => {
          await tx.query(
            `INSERT INTO ${effectsTable} (participant, key, phase, at) VALUES ('local', $1, 'action', 0)`,
            [c.idempotencyKey],
          );
          return { recorded: true };
        },
      },
      compensation: {
        local: async (tx, c) => {
          await tx.query(
            `INSERT INTO ${effectsTable} (participant, key, phase, at) VALUES ('local', $1, 'compensation', 0)`,
            [c.idempotencyKey],
          );
          return undefined;
        },
      },
    },
    {
      name: 'reserve',
      kind: 'compensatable',
      action: command('stock.reserve'),
      compensation: command('stock.release'),
    },
    { name: 'charge', kind: 'pivot', action: command('payments.charge') },
    { name: 'ship', kind: 'retriable', action: command('shipping.label') },
  ];
}

async function setUp(
  t: { after(fn: () => Promise<void>): void },
  behaviours: Record<string, Behaviour> = {},
) {
  const h = await harness();
  t.after(() => h.drop());
  const order = testSaga(h, orderSteps(h.tables.effects));
  await order.migrate(h.pool);
  const handlers: Record<string, (m: Message) => Promise<unknown>> = {
    'stock.reserve': participant(h, 'stock', behaviours.stock ?? ok),
    'stock.release': participant(h, 'stock', behaviours.stock ?? ok),
    'payments.charge': participant(h, 'payments', behaviours.payments ?? ok),
    'shipping.label': participant(h, 'shipping', behaviours.shipping ?? ok),
    'saga.replies': (m) => order.handleReply(h.pool, m),
  };
  const start = async (id: string, s: Saga = order) => {
    const tx = await h.pool.connect();
    try {
      await tx.query('BEGIN');
      const result = await s.start(tx, { id, data: { orderId: id, amount: 1200 } });
      await tx.query('COMMIT');
      return result;
    } finally {
      tx.release();
    }
  };
  return { h, order, handlers, start };
}

it('happy path: every step once, in order, with the key forwarded; completed and queryable', async (t) => {
  const forwarded: string[] = [];
  const { h, order, handlers, start } = await setUp(t, {
    payments: (command, message) => {
      forwarded.push(message.headers['Idempotency-Key']!);
      return { ok: true, result: { chargeId: `ch_${command.sagaId}` } };
    },
  });
  assert.deepEqual(await start('o1'), { started: true });
  assert.deepEqual(await start('o1'), { started: false }, 'a second start of the same id does nothing');
  await pump(h, handlers, { sagas: [order] });

  const state = (await order.get(h.pool, 'o1'))!;
  assert.equal(state.status, 'completed');
  assert.equal(state.currentStep, null);
  assert.deepEqual(state.completed, ['record', 'reserve', 'charge', 'ship']);
  assert.deepEqual(state.compensated, []);
  assert.equal(state.failure, null);
  assert.deepEqual(state.results.charge, { chargeId: 'ch_o1' });
  assert.deepEqual(forwarded, ['order:o1:charge']);
  assert.deepEqual((await effects(h)).sort(), [
    'local/action/order:o1:record',
    'payments/action/order:o1:charge',
    'shipping/action/order:o1:ship:1',
    'stock/action/order:o1:reserve',
  ]);
  assert.deepEqual(
    state.history.map((e) => `${e.event}${e.step ? ` ${e.step}` : ''}`),
    [
      'started',
      'succeeded record',
      'sent reserve',
      'succeeded reserve',
      'sent charge',
      'succeeded charge',
      'sent ship',
      'succeeded ship',
      'completed',
    ],
  );
  assert.deepEqual(
    (await order.list(h.pool, { status: 'completed' })).map((s) => s.id),
    ['o1'],
  );
  assert.equal((await h.box.stats(h.pool)).pending, 0, 'nothing left unpublished');
});

it('a step fails before the pivot (at it): the completed steps are compensated in reverse, each once', async (t) => {
  const { h, order, handlers, start } = await setUp(t, {
    payments: () => ({ ok: false, error: 'card declined' }),
  });
  await start('o2');
  // Every message twice: a compensation must still run once.
  await pump(h, handlers, {
    sagas: [order],
    deliver: async (handle) => {
      await handle();
      return handle();
    },
  });

  const state = (await order.get(h.pool, 'o2'))!;
  assert.equal(state.status, 'compensated');
  assert.deepEqual(
    state.failure && { step: state.failure.step, reason: state.failure.reason, error: state.failure.error },
    {
      step: 'charge',
      reason: 'failed',
      error: 'card declined',
    },
  );
  assert.deepEqual(state.compensated, ['reserve', 'record'], 'in reverse order');
  assert.deepEqual(state.toCompensate, []);
  const rows = await effects(h);
  assert.deepEqual(
    rows.filter((r) => r.includes('/compensation/')),
    ['stock/compensation/order:o2:reserve:compensate', 'local/compensation/order:o2:record:compensate'],
  );
  assert.ok(!rows.some((r) => r.startsWith('shipping/')), 'nothing past the pivot ran');
});

it('a step fails after the pivot: retried forward with a new key per attempt, never compensated', async (t) => {
  let calls = 0;
  const { h, order, handlers, start } = await setUp(t, {
    shipping: () => (++calls < 3 ? { ok: false, error: `label service down (${calls})` } : { ok: true }),
  });
  await start('o3');
  await pump(h, handlers, { sagas: [order] });

  const state = (await order.get(h.pool, 'o3'))!;
  assert.equal(state.status, 'completed');
  assert.deepEqual(state.compensated, []);
  assert.ok(!state.history.some((e) => e.event === 'compensating'));
  assert.deepEqual(
    state.history.filter((e) => e.step === 'ship' && e.event === 'sent').map((e) => e.detail),
    ['order:o3:ship:1', 'order:o3:ship:2', 'order:o3:ship:3'],
  );
  assert.deepEqual(
    (await effects(h)).filter((r) => r.startsWith('shipping/')),
    ['shipping/action/order:o3:ship:3'],
  );
  assert.ok(!(await effects(h)).some((r) => r.includes('/compensation/')));
});

it('a retriable step that never succeeds ends stuck, still not compensated', async (t) => {
  const h = await harness();
  t.after(() => h.drop());
  const steps = orderSteps(h.tables.effects);
  const order = testSaga(h, steps, { maxAttempts: 3 });
  await order.migrate(h.pool);
  const handlers = {
    'stock.reserve': participant(h, 'stock', ok),
    'payments.charge': participant(h, 'payments', ok),
    'shipping.label': participant(h, 'shipping', () => ({ ok: false, error: 'no' })),
    'saga.replies': (m: Message) => order.handleReply(h.pool, m),
  };
  const tx = await h.pool.connect();
  await tx.query('BEGIN');
  await order.start(tx, { id: 'o4', data: null });
  await tx.query('COMMIT');
  tx.release();
  await pump(h, handlers, { sagas: [order] });
  const state = (await order.get(h.pool, 'o4'))!;
  assert.equal(state.status, 'stuck');
  assert.equal(state.failure?.reason, 'attempts_exhausted');
  assert.equal(state.attempt, 3);
  assert.deepEqual(state.compensated, []);
});

it('duplicate replies, sequential and concurrent, advance the saga once', async (t) => {
  const { h, order, handlers, start } = await setUp(t);
  const outcomes: string[] = [];
  const replyHandler = handlers['saga.replies']!;
  handlers['saga.replies'] = async (m) => {
    const outcome = (await replyHandler(m)) as { status: string };
    outcomes.push(outcome.status);
    return outcome;
  };
  const replays: Message[] = [];
  await start('o5');
  await pump(h, handlers, {
    sagas: [order],
    deliver: async (handle, message) => {
      if (message.topic !== 'saga.replies') return handle();
      // Five at once, then once more after they settled.
      await Promise.all([handle(), handle(), handle(), handle(), handle()]);
      await handle();
      replays.push({
        id: `other-${message.id}`,
        type: message.type,
        key: message.key,
        headers: message.headers,
        payload: message.payload,
        raw: null,
      });
    },
  });
  const state = (await order.get(h.pool, 'o5'))!;
  assert.equal(state.status, 'completed');
  // Three remote steps: three replies, each delivered six times.
  assert.equal(outcomes.length, 18);
  assert.equal(outcomes.filter((o) => o === 'processed').length, 3);
  assert.ok(
    outcomes.every((o) => o === 'processed' || o === 'duplicate' || o === 'busy'),
    outcomes.join(),
  );
  for (const step of ['reserve', 'charge', 'ship']) {
    assert.equal(state.history.filter((e) => e.step === step && e.event === 'succeeded').length, 1, step);
    assert.equal(state.history.filter((e) => e.step === step && e.event === 'sent').length, 1, step);
  }
  // The same answers under other message ids get past the inbox, and are stale.
  for (const replay of replays) {
    const outcome = await order.handleReply(h.pool, replay);
    assert.deepEqual(outcome, { status: 'processed', value: 'stale' });
  }
  const after = (await order.get(h.pool, 'o5'))!;
  assert.deepEqual(after.completed, state.completed);
  assert.equal(after.status, 'completed');
  assert.equal((await effects(h)).length, 4, 'one effect per step');
});

it('a timed-out step: the sweeper compensates it (its outcome is unknown) and the completed ones, in reverse', async (t) => {
  let now = Date.now();
  const h = await harness();
  t.after(() => h.drop());
  const order = testSaga(h, orderSteps(h.tables.effects), { clock: () => now, stepTimeoutMs: 5_000 });
  await order.migrate(h.pool);
  let answerReserve = false;
  const stock: Behaviour = (command) =>
    command.phase === 'compensation' || answerReserve ? { ok: true } : undefined;
  const handlers = {
    'stock.reserve': participant(h, 'stock', stock),
    'stock.release': participant(h, 'stock', stock),
    'saga.replies': (m: Message) => order.handleReply(h.pool, m),
  };
  const tx = await h.pool.connect();
  await tx.query('BEGIN');
  await order.start(tx, { id: 'o6', data: null });
  await tx.query('COMMIT');
  tx.release();
  await pump(h, handlers, { sagas: [order] });
  let state = (await order.get(h.pool, 'o6'))!;
  assert.equal(state.status, 'running');
  assert.equal(state.currentStep, 'reserve');
  assert.equal(state.waiting, 'reply');
  assert.equal(state.deadline, now + 5_000);
  assert.equal(await order.sweep(h.pool), 0, 'nothing is due yet');

  now += 5_001;
  await pump(h, handlers, { sagas: [order] });
  state = (await order.get(h.pool, 'o6'))!;
  assert.equal(state.status, 'compensated');
  assert.equal(state.failure?.reason, 'timeout');
  assert.deepEqual(state.compensated, ['reserve', 'record']);

  // The participant's late answer to the timed-out command: stale, changes nothing.
  answerReserve = true;
  const late: Message = {
    id: 'late-reply',
    type: 'saga.reply',
    key: 'o6',
    headers: {
      'Idempotency-Key': 'order:o6:reserve',
      'Saga-Name': 'order',
      'Saga-Id': 'o6',
      'Saga-Step': 'reserve',
      'Saga-Phase': 'action',
      'Saga-Attempt': '1',
      'Saga-Reply-To': 'saga.replies',
    },
    payload: { ok: true, result: null } satisfies StepReply,
    raw: null,
  };
  assert.deepEqual(await order.handleReply(h.pool, late), { status: 'processed', value: 'stale' });
  assert.equal((await order.get(h.pool, 'o6'))!.status, 'compensated');
});

it('many sagas at once, with every reply delivered twice concurrently: each terminal, effects once', async (t) => {
  const { h, order, handlers, start } = await setUp(t, {
    payments: (command) =>
      Number(command.sagaId.slice(1)) % 3 === 0 ? { ok: false, error: 'declined' } : { ok: true },
  });
  const ids = Array.from({ length: 30 }, (_, i) => `m${i}`);
  await Promise.all(ids.map((id) => start(id)));
  await pump(h, handlers, { sagas: [order], deliver: (handle) => Promise.all([handle(), handle()]) });
  const states = await order.list(h.pool);
  assert.equal(states.length, 30);
  for (const s of states) {
    const declined = Number(s.id.slice(1)) % 3 === 0;
    assert.equal(s.status, declined ? 'compensated' : 'completed', s.id);
  }
  const rows = await effects(h);
  assert.equal(new Set(rows).size, rows.length, 'no effect twice');
  assert.equal(rows.filter((r) => r.includes('/compensation/')).length, 10 * 2);
  assert.equal(SAGA_DEFAULTS.table, 'oncely_saga');
});
