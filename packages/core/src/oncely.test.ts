import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { OncelyError } from './errors.ts';
import type { OncelyEvent } from './events.ts';
import { memoryStore } from './memory-store.ts';
import { createOncely, type Decision, type ExecuteDecision } from './oncely.ts';
import { DEFAULTS, type OncelyOptions } from './options.ts';
import { recordId } from './record-id.ts';
import type { CompleteInput, Store, StoredResponse } from './store.ts';

const body = (text: string): Uint8Array => new TextEncoder().encode(text);
const created = (text = '{"id":"pay_1"}'): StoredResponse => ({
  status: 201,
  headers: [['content-type', 'application/json']],
  body: body(text),
});
const request = { scope: 'tenant-a', key: 'key-1', fingerprint: 'fp-1' };

function expectExecute(decision: Decision): ExecuteDecision {
  assert.equal(decision.kind, 'execute', `expected execute, got ${decision.kind}`);
  return decision as ExecuteDecision;
}
function expectReject(decision: Decision, code: string): OncelyError {
  assert.equal(decision.kind, 'reject', `expected reject, got ${decision.kind}`);
  assert.ok(decision.kind === 'reject');
  assert.equal(decision.error.code, code);
  return decision.error;
}

/** A store that counts calls and lets a test make any step fail (fault injection, the only mock allowed). */
function instrumented(inner: Store = memoryStore({ sweepIntervalMs: 0 })) {
  const calls = { acquire: 0, complete: 0, extend: 0, release: 0, get: 0 };
  const faults: Partial<Record<'acquire' | 'complete' | 'extend' | 'release', () => unknown>> = {};
  const wrap =
    <K extends 'acquire' | 'complete' | 'extend' | 'release' | 'get'>(name: K) =>
    async (input: never) => {
      calls[name] += 1;
      const fault = (faults as Record<string, (() => unknown) | undefined>)[name];
      if (fault) {
        const outcome = fault();
        if (outcome !== undefined) return outcome;
      }
      return (inner[name] as (i: never) => Promise<unknown>)(input);
    };
  const store = {
    name: 'instrumented',
    acquire: wrap('acquire'),
    complete: wrap('complete'),
    extend: wrap('extend'),
    release: wrap('release'),
    get: wrap('get'),
    close: () => inner.close(),
  } as Store;
  return { store, calls, faults, inner };
}

function engine(extra: Partial<OncelyOptions> = {}, store: Store = memoryStore({ sweepIntervalMs: 0 })) {
  const events: OncelyEvent[] = [];
  const oncely = createOncely({ store, onEvent: (e) => events.push(e), ...extra });
  return { oncely, events, types: () => events.map((e) => e.type) };
}

describe('options', () => {
  it('exposes every default in DEFAULTS and merges them', () => {
    const { oncely } = engine();
    assert.equal(DEFAULTS.ttlMs, 86_400_000);
    assert.equal(DEFAULTS.leaseMs, 30_000);
    assert.equal(DEFAULTS.concurrency, 'reject');
    assert.equal(DEFAULTS.cache, 'success-only');
    assert.equal(DEFAULTS.maxResponseBytes, 1_048_576);
    assert.equal(DEFAULTS.failOpen, false);
    assert.equal(oncely.options.leaseMs, DEFAULTS.leaseMs);
    assert.ok(Object.isFrozen(DEFAULTS));
  });

  it('rejects unknown options', () => {
    assert.throws(
      () => createOncely({ store: memoryStore(), leaseMS: 10 } as unknown as OncelyOptions),
      (e: unknown) =>
        e instanceof OncelyError && e.code === 'ERR_ONCELY_INVALID_OPTION' && /leaseMS/.test(e.message),
    );
  });

  for (const [name, bad] of [
    ['leaseMs', { leaseMs: 0 }],
    ['leaseMs', { leaseMs: 1.5 }],
    ['ttlMs', { ttlMs: 1000, leaseMs: 2000 }],
    ['concurrency', { concurrency: 'queue' }],
    ['cache', { cache: 'everything' }],
    ['maxResponseBytes', { maxResponseBytes: -1 }],
    ['failOpen', { failOpen: 'yes' }],
    ['clock', { clock: 5 }],
    ['store', { store: {} }],
  ] as const) {
    it(`rejects an invalid ${name}`, () => {
      assert.throws(
        () => createOncely({ store: memoryStore(), ...(bad as object) } as OncelyOptions),
        (e: unknown) => e instanceof OncelyError && e.code === 'ERR_ONCELY_INVALID_OPTION',
      );
    });
  }
});

describe('begin: first request and replay', () => {
  it('executes the first request and replays the stored response byte for byte', async () => {
    const { oncely, types } = engine();
    const first = expectExecute(await oncely.begin(request));
    assert.equal(first.recorded, true);
    assert.equal(first.takeover, false);
    assert.equal(await first.commit(created()), 'stored');
    const second = await oncely.begin(request);
    assert.equal(second.kind, 'replay');
    assert.ok(second.kind === 'replay');
    assert.deepEqual(second.response, created());
    assert.equal(second.keyHash, first.keyHash);
    assert.deepEqual(types(), ['executed', 'completed', 'replayed']);
  });

  it('costs one acquire for a replay and acquire + complete for a quick first execution', async () => {
    const { store, calls } = instrumented();
    const { oncely } = engine({}, store);
    const first = expectExecute(await oncely.begin(request));
    await first.commit(created());
    assert.deepEqual(calls, { acquire: 1, complete: 1, extend: 0, release: 0, get: 0 });
    await oncely.begin(request);
    assert.deepEqual(calls, { acquire: 2, complete: 1, extend: 0, release: 0, get: 0 });
  });

  it('keeps scopes apart: tenant B never replays tenant A', async () => {
    const { oncely } = engine();
    await expectExecute(await oncely.begin(request)).commit(created('A'));
    const b = expectExecute(await oncely.begin({ ...request, scope: 'tenant-b' }));
    assert.notEqual(b.keyHash, (await oncely.begin(request)).keyHash);
  });

  it('rejects an invalid key without touching the store', async () => {
    const { store, calls } = instrumented();
    const { oncely } = engine({}, store);
    for (const key of ['', 'x'.repeat(256), 'caf\u00e9', 'a\nb']) {
      expectReject(await oncely.begin({ ...request, key }), 'ERR_ONCELY_KEY_INVALID');
    }
    assert.equal(calls.acquire, 0);
  });

  it('commit is idempotent: a second call returns the first outcome', async () => {
    const { store, calls } = instrumented();
    const { oncely } = engine({}, store);
    const d = expectExecute(await oncely.begin(request));
    assert.equal(await d.commit(created('one')), 'stored');
    assert.equal(await d.commit(created('two')), 'stored');
    await d.abort();
    assert.equal(calls.complete, 1);
    assert.equal(calls.release, 0);
  });

  it('forgets a key after its retention, measured on the injected clock', async () => {
    let now = 1_000_000;
    const { oncely } = engine({ clock: () => now, ttlMs: 60_000, leaseMs: 1000 });
    await expectExecute(await oncely.begin(request)).commit(created());
    now += 59_999;
    assert.equal((await oncely.begin(request)).kind, 'replay');
    now += 1;
    expectExecute(await oncely.begin({ ...request, fingerprint: 'another request' }));
  });
});

describe('begin: mismatch and conflict', () => {
  it('refuses a reused key with another fingerprint after completion (422)', async () => {
    const { oncely, types } = engine();
    await expectExecute(await oncely.begin(request)).commit(created());
    const error = expectReject(
      await oncely.begin({ ...request, fingerprint: 'fp-2' }),
      'ERR_ONCELY_KEY_REUSED',
    );
    assert.equal(error.status, 422);
    assert.equal((await oncely.begin(request)).kind, 'replay', 'the original still replays');
    assert.deepEqual(types(), ['executed', 'completed', 'mismatch', 'replayed']);
  });

  it('lets a mismatch win over in-progress', async () => {
    const { oncely } = engine({ concurrency: 'wait', maxWaitMs: 5000 });
    expectExecute(await oncely.begin(request));
    const started = Date.now();
    expectReject(await oncely.begin({ ...request, fingerprint: 'fp-2' }), 'ERR_ONCELY_KEY_REUSED');
    assert.ok(Date.now() - started < 1000, 'a mismatch is answered at once, even in wait mode');
  });

  it('answers a concurrent duplicate with 409 and Retry-After', async () => {
    const { oncely, types } = engine({ retryAfterSeconds: 2 });
    expectExecute(await oncely.begin(request));
    const error = expectReject(await oncely.begin(request), 'ERR_ONCELY_IN_PROGRESS');
    assert.equal(error.status, 409);
    assert.equal(error.retryAfter, 2);
    assert.deepEqual(types(), ['executed', 'conflict']);
  });

  it('runs exactly one of 50 concurrent duplicates', async () => {
    const { oncely } = engine();
    const decisions = await Promise.all(Array.from({ length: 50 }, () => oncely.begin(request)));
    assert.equal(decisions.filter((d) => d.kind === 'execute').length, 1);
    assert.equal(
      decisions.filter((d) => d.kind === 'reject' && d.error.code === 'ERR_ONCELY_IN_PROGRESS').length,
      49,
    );
  });
});

describe('begin: wait mode', () => {
  it('waits for the first request and replays its response', async () => {
    const { oncely } = engine({ concurrency: 'wait', maxWaitMs: 5000, waitPollMs: 10 });
    const first = expectExecute(await oncely.begin(request));
    const waiters = Array.from({ length: 20 }, () => oncely.begin(request));
    await sleep(60);
    await first.commit(created('the one'));
    for (const d of await Promise.all(waiters)) {
      assert.equal(d.kind, 'replay');
      assert.ok(d.kind === 'replay');
      assert.deepEqual(d.response.body, body('the one'));
    }
  });

  it('runs a waiter when the first request released the key', async () => {
    const { oncely } = engine({ concurrency: 'wait', maxWaitMs: 5000, waitPollMs: 10 });
    const first = expectExecute(await oncely.begin(request));
    const waiter = oncely.begin(request);
    await sleep(30);
    await first.abort(new Error('boom'));
    const second = expectExecute(await waiter);
    assert.equal(second.takeover, false);
  });

  it('answers 409 once maxWaitMs has passed', async () => {
    const { oncely } = engine({ concurrency: 'wait', maxWaitMs: 80, waitPollMs: 10 });
    expectExecute(await oncely.begin(request));
    const started = Date.now();
    expectReject(await oncely.begin(request), 'ERR_ONCELY_IN_PROGRESS');
    const waited = Date.now() - started;
    assert.ok(waited >= 70 && waited < 1000, `waited ${waited} ms`);
  });

  it('takes over from a crashed first request once its lease lapses', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const { oncely } = engine({ concurrency: 'wait', maxWaitMs: 5000, waitPollMs: 10, leaseMs: 90 }, store);
    const keyHash = recordId(request.scope, request.key);
    // The crashed owner: it acquired the key, then its process died (no renewal, no release).
    const now = Date.now();
    await store.acquire({
      id: keyHash,
      fingerprint: 'fp-1',
      token: 'dead',
      now,
      leaseUntil: now + 90,
      expiresAt: now + 60_000,
    });
    const started = Date.now();
    const d = expectExecute(await oncely.begin(request));
    assert.equal(d.takeover, true);
    assert.ok(Date.now() - started >= 60, 'it waited for the lease to lapse');
  });
});

describe('commit: cache policy', () => {
  const cases: Array<[OncelyOptions['cache'], number, 'stored' | 'released']> = [
    ['success-only', 200, 'stored'],
    ['success-only', 204, 'stored'],
    ['success-only', 400, 'released'],
    ['success-only', 404, 'released'],
    ['success-only', 500, 'released'],
    ['final-errors', 201, 'stored'],
    ['final-errors', 404, 'stored'],
    ['final-errors', 400, 'released'],
    ['final-errors', 409, 'released'],
    ['final-errors', 422, 'released'],
    ['final-errors', 429, 'released'],
    ['final-errors', 503, 'released'],
    ['stripe', 400, 'stored'],
    ['stripe', 500, 'stored'],
    [(status: number) => status === 418, 418, 'stored'],
    [(status: number) => status === 418, 200, 'released'],
  ];
  for (const [cache, status, outcome] of cases) {
    it(`${typeof cache === 'function' ? 'predicate' : cache}: ${status} is ${outcome}`, async () => {
      const { oncely } = engine({ cache });
      const d = expectExecute(await oncely.begin(request));
      assert.equal(await d.commit({ status, headers: [], body: body('x') }), outcome);
      const next = await oncely.begin(request);
      assert.equal(next.kind, outcome === 'stored' ? 'replay' : 'execute');
    });
  }

  it('abort frees the key so a retry runs again', async () => {
    const { oncely, types } = engine();
    await expectExecute(await oncely.begin(request)).abort(new Error('handler threw'));
    expectExecute(await oncely.begin(request));
    assert.deepEqual(types(), ['executed', 'released', 'executed']);
  });
});

describe('commit: oversized responses', () => {
  it('records the work as done without the body, and never runs it twice', async () => {
    const { oncely } = engine({ maxResponseBytes: 16 });
    const d = expectExecute(await oncely.begin(request));
    assert.equal(await d.commit(created('x'.repeat(17))), 'stored_without_body');
    const retry = expectReject(await oncely.begin(request), 'ERR_ONCELY_RESPONSE_NOT_STORED');
    assert.equal(retry.status, 409);
    const exact = expectExecute(await oncely.begin({ ...request, key: 'key-2' }));
    assert.equal(await exact.commit(created('x'.repeat(16))), 'stored', 'the limit itself still fits');
  });
});

describe("commitWith: completing through the caller's transaction", () => {
  it("hands the fenced completion to the caller's writer, and a retry replays what it wrote", async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const { oncely, types } = engine({ ttlMs: 60_000 }, store);
    const d = expectExecute(await oncely.begin(request));
    const inputs: CompleteInput[] = [];
    const outcome = await d.commitWith(created(), (input) => {
      inputs.push(input);
      return store.complete(input);
    });
    assert.equal(outcome, 'stored');
    assert.equal(inputs.length, 1);
    assert.equal(inputs[0]!.id, d.keyHash);
    assert.equal(inputs[0]!.expiresAt - inputs[0]!.now, 60_000);
    assert.deepEqual(inputs[0]!.response, created());
    const replay = await oncely.begin(request);
    assert.equal(replay.kind, 'replay');
    assert.ok(types().includes('completed'));
  });

  it('leaves the decision open when the writer throws, so abort frees the key', async () => {
    const { oncely } = engine();
    const d = expectExecute(await oncely.begin(request));
    await assert.rejects(
      d.commitWith(created(), async () => {
        throw new Error('serialization failure');
      }),
      /serialization failure/,
    );
    await d.abort();
    expectExecute(await oncely.begin(request));
  });

  it('reports lease_lost when the writer finds another owner, and releases unkept statuses without it', async () => {
    const { oncely } = engine();
    const d = expectExecute(await oncely.begin(request));
    assert.equal(await d.commitWith(created(), async () => false), 'lease_lost');
    const second = expectExecute(await oncely.begin({ ...request, key: 'key-2' }));
    let called = false;
    const outcome = await second.commitWith({ status: 500, headers: [], body: body('') }, async () => {
      called = true;
      return true;
    });
    assert.equal(outcome, 'released');
    assert.equal(called, false, 'a response the policy does not keep is never written');
    expectExecute(await oncely.begin({ ...request, key: 'key-2' }));
  });

  it('drops the body over maxResponseBytes, as commit does', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const { oncely } = engine({ maxResponseBytes: 4 }, store);
    const d = expectExecute(await oncely.begin(request));
    assert.equal(
      await d.commitWith(created('12345'), (input) => {
        assert.equal(input.response, null);
        return store.complete(input);
      }),
      'stored_without_body',
    );
    expectReject(await oncely.begin(request), 'ERR_ONCELY_RESPONSE_NOT_STORED');
  });
});

describe('store failures', () => {
  it('fails closed with 503 when the store is down at acquire', async () => {
    const { store, faults } = instrumented();
    const cause = new Error('ECONNREFUSED');
    faults.acquire = () => {
      throw cause;
    };
    const { oncely, events } = engine({ retryAfterSeconds: 3 }, store);
    const error = expectReject(await oncely.begin(request), 'ERR_ONCELY_STORE_UNAVAILABLE');
    assert.equal(error.status, 503);
    assert.equal(error.retryAfter, 3);
    assert.equal(error.cause, cause);
    assert.equal(events[0]?.type, 'store_error');
    assert.equal(events[0]?.operation, 'acquire');
  });

  it('fails open only when asked to, and then records nothing', async () => {
    const { store, faults, calls } = instrumented();
    faults.acquire = () => {
      throw new Error('down');
    };
    const { oncely, types } = engine({ failOpen: true }, store);
    const d = expectExecute(await oncely.begin(request));
    assert.equal(d.recorded, false);
    assert.equal(await d.commit(created()), 'unrecorded');
    assert.equal(calls.complete, 0);
    assert.deepEqual(types(), ['store_error', 'executed']);
  });

  it('keeps retrying a failed completion, never releases, and replays once it lands', async () => {
    const { store, faults, calls } = instrumented();
    let failures = 3;
    faults.complete = () => {
      if (failures-- > 0) throw new Error('write timeout');
      return undefined;
    };
    const { oncely, events } = engine({ leaseMs: 600 }, store);
    const d = expectExecute(await oncely.begin(request));
    assert.equal(await d.commit(created('charged')), 'pending', 'the response still goes to the client');
    expectReject(await oncely.begin(request), 'ERR_ONCELY_IN_PROGRESS');
    await oncely.drain();
    assert.equal(calls.complete, 4);
    assert.equal(calls.release, 0, 'never release after the work ran');
    const replay = await oncely.begin(request);
    assert.ok(replay.kind === 'replay');
    assert.deepEqual(replay.response.body, body('charged'));
    assert.equal(events.filter((e) => e.type === 'store_error' && e.operation === 'complete').length, 3);
    assert.ok(events.some((e) => e.type === 'completed'));
  });

  it('reports lease_lost when the completion finds another owner', async () => {
    let now = 1_000_000;
    const store = memoryStore({ sweepIntervalMs: 0 });
    const { oncely, types } = engine({ clock: () => now, leaseMs: 1000 }, store);
    const zombie = expectExecute(await oncely.begin(request));
    now += 1000;
    const successor = expectExecute(await oncely.begin(request));
    assert.equal(successor.takeover, true);
    assert.equal(await zombie.commit(created('zombie')), 'lease_lost');
    assert.equal(await successor.commit(created('successor')), 'stored');
    const replay = await oncely.begin(request);
    assert.ok(replay.kind === 'replay');
    assert.deepEqual(replay.response.body, body('successor'));
    assert.ok(types().includes('lease_lost'));
  });
});

describe('lease renewal', () => {
  it('renews while a long handler runs, so a duplicate cannot take over', async () => {
    const { store, calls } = instrumented();
    const { oncely } = engine({ leaseMs: 90 }, store);
    const d = expectExecute(await oncely.begin(request));
    await sleep(400);
    assert.ok(calls.extend >= 5, `renewed ${calls.extend} times in 400 ms with a 90 ms lease`);
    expectReject(await oncely.begin(request), 'ERR_ONCELY_IN_PROGRESS');
    assert.equal(d.signal.aborted, false);
    await d.commit(created());
    const extends_ = calls.extend;
    await sleep(100);
    assert.equal(calls.extend, extends_, 'renewal stops at commit');
  });

  it('aborts the signal when another owner took the key over', async () => {
    let now = 1_000_000;
    const store = memoryStore({ sweepIntervalMs: 0 });
    const { oncely, types } = engine({ clock: () => now, leaseMs: 60 }, store);
    const stalled = expectExecute(await oncely.begin(request));
    now += 60; // the owner stalls past its lease before its first renewal
    expectExecute(await oncely.begin(request));
    await sleep(50);
    assert.equal(stalled.signal.aborted, true);
    assert.ok(stalled.signal.reason instanceof OncelyError);
    assert.equal((stalled.signal.reason as OncelyError).code, 'ERR_ONCELY_LEASE_LOST');
    assert.ok(types().includes('lease_lost'));
  });

  it('aborts the signal when renewals fail past the lease end', async () => {
    const { store, faults } = instrumented();
    faults.extend = () => {
      throw new Error('store down');
    };
    const { oncely, events } = engine({ leaseMs: 60 }, store);
    const d = expectExecute(await oncely.begin(request));
    await sleep(40);
    assert.equal(d.signal.aborted, false, 'one failed renewal inside the lease does not abort');
    await sleep(120);
    assert.equal(d.signal.aborted, true);
    assert.ok(events.some((e) => e.type === 'store_error' && e.operation === 'extend'));
  });

  it('aborts the signal at the lease end when a renewal hangs instead of failing', async () => {
    const { store, faults } = instrumented();
    faults.extend = () => new Promise(() => {}); // a pool with no free connection, a black-holed socket
    const { oncely } = engine({ leaseMs: 60 }, store);
    const d = expectExecute(await oncely.begin(request));
    await sleep(150);
    assert.equal(d.signal.aborted, true, 'the owner stops before a takeover can run beside it');
    assert.equal((d.signal.reason as OncelyError).code, 'ERR_ONCELY_LEASE_LOST');
    expectExecute(await oncely.begin(request));
  });

  it('never renews past the retention end: the work is told to stop when its record is forgotten', async () => {
    const { store, calls } = instrumented();
    const { oncely } = engine({ leaseMs: 60, ttlMs: 150 }, store);
    const d = expectExecute(await oncely.begin(request));
    await sleep(100);
    assert.equal(d.signal.aborted, false, 'renewed while retention lasts');
    await sleep(200);
    assert.equal(d.signal.aborted, true, 'aborted once the lease reaches the retention end');
    assert.ok(calls.extend >= 1);
  });

  it('passes whole milliseconds to the store, whatever the clock', async () => {
    const seen: number[] = [];
    const { store } = instrumented();
    const inner = store.acquire.bind(store);
    store.acquire = (input) => {
      seen.push(input.now, input.leaseUntil, input.expiresAt);
      return inner(input);
    };
    const { oncely } = engine({ clock: () => 1_000_000.75 }, store);
    const d = expectExecute(await oncely.begin(request));
    await d.commit(created());
    assert.deepEqual(seen, [1_000_000, 1_000_000 + DEFAULTS.leaseMs, 1_000_000 + DEFAULTS.ttlMs]);
  });
});

describe('run', () => {
  it('runs once and returns the same value on replay', async () => {
    const { oncely } = engine();
    let charges = 0;
    const charge = () => oncely.run({ key: 'order_1:pay:1' }, async () => ({ chargeId: `ch_${++charges}` }));
    assert.deepEqual(await charge(), { chargeId: 'ch_1' });
    assert.deepEqual(await charge(), { chargeId: 'ch_1' });
    assert.equal(charges, 1);
  });

  it('frees the key when the work throws, and rethrows', async () => {
    const { oncely } = engine();
    await assert.rejects(
      oncely.run({ key: 'k' }, () => {
        throw new Error('provider down');
      }),
      /provider down/,
    );
    assert.equal(await oncely.run({ key: 'k' }, () => 'ok'), 'ok');
  });

  it('throws the OncelyError of a rejection', async () => {
    const { oncely } = engine();
    let release!: () => void;
    const running = oncely.run({ key: 'k' }, () => new Promise<void>((r) => (release = r)));
    await sleep(5);
    await assert.rejects(
      oncely.run({ key: 'k' }, () => 'second'),
      (e: unknown) => e instanceof OncelyError && e.code === 'ERR_ONCELY_IN_PROGRESS',
    );
    release();
    await running;
  });

  it('passes an AbortSignal to the work', async () => {
    const { oncely } = engine();
    await oncely.run({ key: 'k' }, (signal) => assert.ok(signal instanceof AbortSignal));
  });
});

describe('events', () => {
  it('ignores an observer that throws', async () => {
    const oncely = createOncely({
      store: memoryStore(),
      onEvent: () => {
        throw new Error('observer bug');
      },
    });
    const d = expectExecute(await oncely.begin(request));
    assert.equal(await d.commit(created()), 'stored');
  });

  it('carries scope and key hash, never the raw key', async () => {
    const { oncely, events } = engine();
    await oncely.begin(request);
    assert.equal(events[0]?.scope, 'tenant-a');
    assert.match(events[0]?.keyHash ?? '', /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(events).includes(request.key));
  });
});
