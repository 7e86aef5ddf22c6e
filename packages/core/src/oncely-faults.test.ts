// The engine under store faults: a stalled acquire, an acquire that lands after the engine gave up,
// a completion whose reply was lost, and many waiters of one key. Each test fails on an engine that
// does not bound its store calls, leaves orphans, or polls per waiter.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OncelyEvent } from './events.ts';
import { memoryStore } from './memory-store.ts';
import { createOncely, type Decision, type ExecuteDecision } from './oncely.ts';
import { recordId } from './record-id.ts';
import type { AcquireInput, AcquireResult, Store, StoredResponse } from './store.ts';

const created: StoredResponse = {
  status: 201,
  headers: [['content-type', 'application/json']],
  body: new TextEncoder().encode('{"id":"pay_1"}'),
};
const request = { scope: 'tenant-a', key: 'key-1', fingerprint: 'fp-1' };
const id = recordId(request.scope, request.key);

function expectExecute(decision: Decision): ExecuteDecision {
  assert.equal(decision.kind, 'execute', `expected execute, got ${JSON.stringify(decision)}`);
  return decision as ExecuteDecision;
}
function expectCode(decision: Decision, code: string): void {
  assert.equal(decision.kind, 'reject', `expected reject ${code}, got ${decision.kind}`);
  assert.ok(decision.kind === 'reject');
  assert.equal(decision.error.code, code);
}

/** A store whose calls a test can hold back (a stalled server) and count. */
function stallable(inner: Store = memoryStore({ sweepIntervalMs: 0 })) {
  const calls = { acquire: 0, complete: 0, extend: 0, release: 0, get: 0 };
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  const held = async (): Promise<void> => {
    if (gate) await gate;
  };
  const store: Store = {
    name: 'stallable',
    acquire: async (input) => {
      calls.acquire++;
      await held();
      return inner.acquire(input);
    },
    complete: async (input) => {
      calls.complete++;
      await held();
      return inner.complete(input);
    },
    extend: async (input) => {
      calls.extend++;
      await held();
      return inner.extend(input);
    },
    release: async (input) => {
      calls.release++;
      await held();
      return inner.release(input);
    },
    get: async (input) => {
      calls.get++;
      await held();
      return inner.get(input);
    },
    close: () => inner.close(),
  };
  return {
    store,
    calls,
    inner,
    pause() {
      gate = new Promise((resolve) => {
        open = resolve;
      });
    },
    resume() {
      gate = undefined;
      open?.();
    },
  };
}

describe('engine: store calls are bounded and an abandoned acquire leaves no orphan', () => {
  it('answers 503 within storeTimeoutMs while the store stalls, and frees the record the stalled acquire writes later', async () => {
    const s = stallable();
    const events: OncelyEvent[] = [];
    const oncely = createOncely({
      store: s.store,
      leaseMs: 10_000,
      storeTimeoutMs: 100,
      onEvent: (e) => events.push(e),
    });
    s.pause();
    const started = Date.now();
    const decision = await oncely.begin(request);
    const took = Date.now() - started;
    expectCode(decision, 'ERR_ONCELY_STORE_UNAVAILABLE');
    assert.ok(took < 1000, `answered in ${took} ms, not after the stall`);
    // The server resumes: the acquire that was on the wire lands and writes an in-progress record.
    s.resume();
    await sleep(100);
    const record = await s.inner.get({ id, now: Date.now() });
    assert.equal(record, null, 'the abandoned acquire was released with its own token');
    // So a retry runs at once instead of getting 409 for a whole lease (10 s here).
    const retry = expectExecute(await oncely.begin(request));
    assert.equal(await retry.commit(created), 'stored');
    assert.ok(events.some((e) => e.type === 'store_error' && e.operation === 'acquire'));
  });

  it('answers 503, never LEASE_LOST, when the acquire answers after the lease it asked for', async () => {
    const inner = memoryStore({ sweepIntervalMs: 0 });
    let late = true;
    const store: Store = {
      ...inner,
      name: 'late',
      acquire: async (input: AcquireInput): Promise<AcquireResult> => {
        const result = await inner.acquire(input);
        // The store took the whole storeTimeoutMs and a lease to answer (a pool stalled for 12 s).
        if (late) await sleep(150);
        return result;
      },
      complete: inner.complete,
      extend: inner.extend,
      release: inner.release,
      get: inner.get,
      close: inner.close,
    };
    const oncely = createOncely({ store, leaseMs: 200, storeTimeoutMs: 5000 });
    expectCode(await oncely.begin(request), 'ERR_ONCELY_STORE_UNAVAILABLE');
    // The late acquire answers 150 ms after it began; its record is released right after that.
    // Polled, not slept, so a loaded machine only makes it slower. A lapsed lease would not do:
    // the record stays until released (get returns it until its retention ends).
    const answered = Date.now();
    while ((await inner.get({ id, now: Date.now() })) !== null && Date.now() - answered < 2000)
      await sleep(5);
    assert.equal(await inner.get({ id, now: Date.now() }), null, 'the late record was released');
    late = false;
    expectExecute(await oncely.begin(request));
  });

  it('bounds every renewal: a hanging extend neither blocks nor outlives the lease', async () => {
    const s = stallable();
    const oncely = createOncely({ store: s.store, leaseMs: 300, storeTimeoutMs: 50 });
    const owner = expectExecute(await oncely.begin(request));
    s.pause();
    await sleep(450);
    assert.ok(owner.signal.aborted, 'the work was told to stop once the lease could not be shown');
    s.resume();
  });

  it('reports a completion whose reply was lost as completed, not as a lost lease', async () => {
    const inner = memoryStore({ sweepIntervalMs: 0 });
    let lose = 1;
    const store: Store = {
      name: 'lossy',
      acquire: (input) => inner.acquire(input),
      complete: async (input) => {
        const ok = await inner.complete(input);
        // The write landed, the reply did not (a connection reset after the commit).
        if (lose-- > 0) throw new Error('ECONNRESET');
        return ok;
      },
      extend: (input) => inner.extend(input),
      release: (input) => inner.release(input),
      get: (input) => inner.get(input),
      close: () => inner.close(),
    };
    const events: OncelyEvent[] = [];
    const oncely = createOncely({ store, onEvent: (e) => events.push(e) });
    const owner = expectExecute(await oncely.begin(request));
    assert.equal(await owner.commit(created), 'pending');
    await oncely.drain();
    assert.ok(events.some((e) => e.type === 'completed'));
    assert.ok(!events.some((e) => e.type === 'lease_lost'), 'no lease was lost');
    assert.equal((await oncely.begin(request)).kind, 'replay');
  });

  it('reports a client that went away and keeps the key', async () => {
    const events: OncelyEvent[] = [];
    const oncely = createOncely({
      store: memoryStore({ sweepIntervalMs: 0 }),
      onEvent: (e) => events.push(e),
    });
    const owner = expectExecute(await oncely.begin(request));
    owner.clientGone();
    assert.ok(events.some((e) => e.type === 'client_gone'));
    expectCode(await oncely.begin(request), 'ERR_ONCELY_IN_PROGRESS');
    assert.equal(owner.signal.aborted, false, 'the work goes on');
    assert.equal(await owner.commit(created), 'stored');
    assert.equal((await oncely.begin(request)).kind, 'replay');
  });
});

describe('engine: the execution bound and a completion that keeps failing', () => {
  it('keeps a result that arrives after the bound while no retry took the key: no second run', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const events: OncelyEvent[] = [];
    const oncely = createOncely({
      store,
      leaseMs: 1000,
      maxExecutionMs: 100,
      onEvent: (e) => events.push(e),
    });
    const owner = expectExecute(await oncely.begin(request));
    await sleep(150); // past the bound: the signal aborted, renewals stopped, the lease still runs
    assert.ok(owner.signal.aborted);
    assert.equal((owner.signal.reason as { code?: string }).code, 'ERR_ONCELY_EXECUTION_TIMEOUT');
    assert.ok(events.some((e) => e.type === 'execution_timeout'));
    assert.equal(await owner.commit(created), 'stored', 'fenced by its token, and still its own key');
    assert.equal((await oncely.begin(request)).kind, 'replay', 'the retry replays instead of running again');
  });

  it('refuses a result that arrives after a retry took the key over (timed_out), and keeps the retry', async () => {
    let offset = 0;
    const store = memoryStore({ sweepIntervalMs: 0 });
    const oncely = createOncely({
      store,
      leaseMs: 1000,
      maxExecutionMs: 100,
      clock: () => Date.now() + offset,
    });
    const owner = expectExecute(await oncely.begin(request));
    await sleep(150);
    offset = 5000; // the abandoned run's lease has lapsed: a retry takes the key over
    const retry = expectExecute(await oncely.begin(request));
    assert.ok(retry.takeover);
    assert.equal(await owner.commit(created), 'timed_out');
    assert.equal(
      await retry.commit({ ...created, body: new TextEncoder().encode('{"id":"pay_2"}') }),
      'stored',
    );
    const replay = await oncely.begin(request);
    assert.equal(
      replay.kind === 'replay' && new TextDecoder().decode(replay.response.body),
      '{"id":"pay_2"}',
    );
  });

  it('gives up retrying a completion the store keeps refusing, and lets the lease lapse', async () => {
    const inner = memoryStore({ sweepIntervalMs: 0 });
    const store: Store = {
      name: 'refusing',
      acquire: (input) => inner.acquire(input),
      complete: async () => {
        throw new Error('this record cannot be written');
      },
      extend: (input) => inner.extend(input),
      release: (input) => inner.release(input),
      get: (input) => inner.get(input),
      close: () => inner.close(),
    };
    const oncely = createOncely({ store, leaseMs: 200, maxExecutionMs: 300 });
    const owner = expectExecute(await oncely.begin(request));
    assert.equal(await owner.commit(created), 'pending');
    const started = Date.now();
    await oncely.drain();
    const took = Date.now() - started;
    // Three leases (600 ms) at least, then no more renewals: never until retention ends.
    assert.ok(took >= 500 && took < 3000, `gave up after ${took} ms`);
    await sleep(250); // the lease lapses
    const retry = await oncely.begin(request);
    assert.equal(retry.kind, 'execute', 'the key is free for a retry once the lease lapsed');
  });

  it('reports a landed completion as completed even when a renewal saw it first', async () => {
    const inner = memoryStore({ sweepIntervalMs: 0 });
    let lose = 1;
    const store: Store = {
      name: 'lossy',
      acquire: (input) => inner.acquire(input),
      complete: async (input) => {
        const ok = await inner.complete(input);
        if (lose-- > 0) throw new Error('ECONNRESET');
        return ok;
      },
      extend: (input) => inner.extend(input),
      release: (input) => inner.release(input),
      get: (input) => inner.get(input),
      close: () => inner.close(),
    };
    const events: OncelyEvent[] = [];
    // Renewals every 20 ms: the first one after the lost reply is refused (the record is completed)
    // before the completion retry, 50 ms later, looks.
    const oncely = createOncely({ store, leaseMs: 60, onEvent: (e) => events.push(e) });
    const owner = expectExecute(await oncely.begin(request));
    assert.equal(await owner.commit(created), 'pending');
    await oncely.drain();
    assert.ok(
      events.some((e) => e.type === 'completed'),
      events.map((e) => e.type).join(','),
    );
    assert.equal((await oncely.begin(request)).kind, 'replay');
  });

  it('waits by polling when the store cannot watch (its watch throws)', async () => {
    const inner = memoryStore({ sweepIntervalMs: 0 });
    const store: Store = {
      ...inner,
      watch: () => {
        throw new Error('subscriber not ready');
      },
    };
    const oncely = createOncely({ store, concurrency: 'wait', maxWaitMs: 3000, waitPollMs: 20 });
    const owner = expectExecute(await oncely.begin(request));
    const first = oncely.begin(request);
    const second = oncely.begin(request);
    await sleep(60);
    await owner.commit(created);
    const started = Date.now();
    assert.deepEqual([(await first).kind, (await second).kind], ['replay', 'replay']);
    assert.ok(Date.now() - started < 1000);
  });
});

describe('engine: waiting for a duplicate', () => {
  it('200 waiters of one key share one watcher: store calls per waiter-second stay far below one', async () => {
    const s = stallable();
    const oncely = createOncely({
      store: s.store,
      concurrency: 'wait',
      maxWaitMs: 10_000,
      waitPollMs: 50,
      waitPollMaxMs: 500,
    });
    const owner = expectExecute(await oncely.begin(request));
    const before = { ...s.calls };
    const started = Date.now();
    const waiting = Array.from({ length: 200 }, () => oncely.begin(request));
    await sleep(2000);
    assert.equal(await owner.commit(created), 'stored');
    const decisions = await Promise.all(waiting);
    const seconds = (Date.now() - started) / 1000;
    for (const decision of decisions) assert.equal(decision.kind, 'replay');
    const acquires = s.calls.acquire - before.acquire;
    const gets = s.calls.get - before.get;
    // One acquire each to find the key taken, then one shared get per poll interval (50, 100, 200,
    // 400, 500 ms ...) and one more at the local completion.
    assert.equal(acquires, 200, 'one acquire per waiter, none while waiting');
    assert.ok(gets <= 12, `gets while 200 waited ${seconds.toFixed(1)} s: ${gets}`);
    const perWaiterSecond = (acquires + gets) / (200 * seconds);
    assert.ok(perWaiterSecond < 1, `store calls per waiter-second: ${perWaiterSecond.toFixed(3)}`);
  });

  it('wakes waiters at once when this process completes the key, without waiting for the next poll', async () => {
    const oncely = createOncely({
      store: memoryStore({ sweepIntervalMs: 0 }),
      concurrency: 'wait',
      maxWaitMs: 10_000,
      waitPollMs: 5000,
      waitPollMaxMs: 5000,
    });
    const owner = expectExecute(await oncely.begin(request));
    const waiting = oncely.begin(request);
    await sleep(20);
    const committed = Date.now();
    await owner.commit(created);
    const decision = await waiting;
    assert.equal(decision.kind, 'replay');
    assert.ok(Date.now() - committed < 500, 'woken by the completion, not by a 5 s poll');
  });

  it('a released key is taken by exactly one waiter; the others wait for its outcome', async () => {
    const oncely = createOncely({
      store: memoryStore({ sweepIntervalMs: 0 }),
      concurrency: 'wait',
      maxWaitMs: 10_000,
      waitPollMs: 10,
    });
    const first = expectExecute(await oncely.begin(request));
    const waiting = Array.from({ length: 20 }, () => oncely.begin(request));
    await sleep(30);
    await first.abort(new Error('upstream 503'));
    await sleep(30);
    // Exactly one of the waiters now owns the key; it completes, the rest replay.
    const settled = await Promise.race([
      Promise.all(waiting),
      sleep(300).then(() => 'still waiting' as const),
    ]);
    assert.equal(settled, 'still waiting', 'the 19 others wait for the new owner');
    const owners: ExecuteDecision[] = [];
    // Find the new owner among the settled promises.
    for (const promise of waiting) {
      const decision = await Promise.race([promise, sleep(0).then(() => undefined)]);
      if (decision?.kind === 'execute') owners.push(decision);
    }
    assert.equal(owners.length, 1, 'one new owner');
    await owners[0]!.commit(created);
    const decisions = await Promise.all(waiting);
    assert.equal(decisions.filter((d) => d.kind === 'replay').length, 19);
  });

  it('a waiter whose signal aborts stops waiting and asking the store', async () => {
    const s = stallable();
    const oncely = createOncely({ store: s.store, concurrency: 'wait', maxWaitMs: 10_000, waitPollMs: 20 });
    expectExecute(await oncely.begin(request));
    const controller = new AbortController();
    const waiting = oncely.begin({ ...request, signal: controller.signal });
    await sleep(100);
    controller.abort();
    expectCode(await waiting, 'ERR_ONCELY_IN_PROGRESS');
    const gets = s.calls.get;
    await sleep(300);
    assert.equal(s.calls.get, gets, 'no poll after the only waiter left');
  });
});
