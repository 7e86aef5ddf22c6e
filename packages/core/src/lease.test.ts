import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { OncelyError } from './errors.ts';
import { keepLease, type LeaseKeeperOptions } from './lease.ts';
import { memoryStore } from './memory-store.ts';
import type { Store } from './store.ts';

async function owned(leaseMs: number, store: Store = memoryStore({ sweepIntervalMs: 0 })) {
  const now = Date.now();
  const result = await store.acquire({
    id: 'r1',
    fingerprint: 'fp',
    token: 't1',
    now,
    leaseUntil: now + leaseMs,
    expiresAt: now + 60_000,
  });
  assert.ok(result.acquired);
  return result.record;
}

function options(store: Store, leaseMs: number, leaseUntil: number, extra: Partial<LeaseKeeperOptions> = {}) {
  const seen = { errors: 0, lost: 0 };
  const opts: LeaseKeeperOptions = {
    store,
    id: 'r1',
    token: 't1',
    leaseMs,
    leaseUntil,
    expiresAt: Date.now() + 60_000,
    clock: Date.now,
    storeTimeoutMs: 1000,
    deadline: Number.POSITIVE_INFINITY,
    onDeadline: () => undefined,
    onStoreError: () => seen.errors++,
    onLost: () => seen.lost++,
    ...extra,
  };
  return { opts, seen };
}

describe('keepLease', () => {
  it('renews every leaseMs/3, so the lease outlives several of its lengths', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const record = await owned(150, store);
    let extends_ = 0;
    const counting: Store = {
      ...store,
      extend: (input) => {
        extends_++;
        return store.extend(input);
      },
    };
    const { opts, seen } = options(counting, 150, record.leaseUntil);
    const lease = keepLease(opts);
    await sleep(500);
    assert.equal(lease.signal.aborted, false);
    assert.ok(extends_ >= 6 && extends_ <= 11, `renewals in 500 ms with a 150 ms lease: ${extends_}`);
    const now = Date.now();
    assert.ok((await store.get({ id: 'r1', now }))!.leaseUntil > now, 'the lease is still ahead');
    lease.stop();
    assert.equal(seen.lost, 0);
  });

  it('loses the lease when the store refuses a renewal (another owner took it over)', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const record = await owned(90, store);
    await store.release({ id: 'r1', token: 't1' });
    const { opts, seen } = options(store, 90, record.leaseUntil);
    const lease = keepLease(opts);
    await sleep(60);
    assert.ok(lease.signal.aborted);
    assert.equal((lease.signal.reason as OncelyError).code, 'ERR_ONCELY_LEASE_LOST');
    assert.equal(seen.lost, 1);
    assert.equal(lease.held, false);
  });

  it('aborts at the lease end when renewals hang, even with a long storeTimeoutMs', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const record = await owned(120, store);
    const hanging: Store = { ...store, extend: () => new Promise<boolean>(() => {}) };
    const { opts } = options(hanging, 120, record.leaseUntil, { storeTimeoutMs: 60_000 });
    const started = Date.now();
    const lease = keepLease(opts);
    await new Promise((resolve) => lease.signal.addEventListener('abort', resolve));
    const took = Date.now() - started;
    assert.ok(took >= 100 && took < 400, `aborted after ${took} ms (lease 120 ms)`);
  });

  it('keeps going through a failing renewal while the lease still holds', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const record = await owned(300, store);
    let fail = 1;
    const flaky: Store = {
      ...store,
      extend: async (input) => {
        if (fail-- > 0) throw new Error('ECONNRESET');
        return store.extend(input);
      },
    };
    const { opts, seen } = options(flaky, 300, record.leaseUntil);
    const lease = keepLease(opts);
    await sleep(500);
    assert.equal(lease.signal.aborted, false, 'one failed renewal is not a lost lease');
    assert.equal(seen.errors, 1);
    lease.stop();
  });

  it('end(reason) aborts the work with that reason and stops renewing', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const record = await owned(90, store);
    let extends_ = 0;
    const counting: Store = {
      ...store,
      extend: (input) => {
        extends_++;
        return store.extend(input);
      },
    };
    const { opts, seen } = options(counting, 90, record.leaseUntil);
    const lease = keepLease(opts);
    const reason = new OncelyError('ERR_ONCELY_LEASE_LOST', 'test');
    lease.end(reason);
    await sleep(150);
    assert.equal(lease.signal.reason, reason);
    assert.equal(extends_, 0);
    assert.equal(seen.lost, 0, 'ended on purpose, not lost');
  });

  it('ends the work at its deadline with the reason onDeadline gives, one timer all along', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const record = await owned(3000, store);
    const reason = new OncelyError('ERR_ONCELY_EXECUTION_TIMEOUT', 'test');
    const started = Date.now();
    const { opts, seen } = options(store, 3000, record.leaseUntil, {
      deadline: started + 120,
      onDeadline: () => reason,
    });
    const lease = keepLease(opts);
    await new Promise((resolve) => lease.signal.addEventListener('abort', resolve));
    const took = Date.now() - started;
    assert.ok(took >= 110 && took < 600, `ended after ${took} ms (deadline 120 ms, renewal at 1 s)`);
    assert.equal(lease.signal.reason, reason);
    assert.equal(seen.lost, 0);
  });

  it('keeps renewing past the deadline when onDeadline declines (the work already finished)', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const record = await owned(150, store);
    const { opts } = options(store, 150, record.leaseUntil, {
      deadline: Date.now() + 60,
      onDeadline: () => undefined,
    });
    const lease = keepLease(opts);
    await sleep(400);
    assert.equal(lease.signal.aborted, false);
    assert.ok(lease.held);
    lease.stop();
  });
});
