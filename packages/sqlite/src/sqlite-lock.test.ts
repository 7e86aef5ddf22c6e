// Another process holds the file's write lock: the store waits for it without blocking this process.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import type { AcquireInput } from '@oncely/core';
import { type SqliteStore, sqliteStore } from './index.ts';
import { holdWriteLock, type LockHolder, maxEventLoopGap } from './test-lock-holder.ts';

const HOLD_MS = 1500;
// The longest the event loop may stall while a call waits for the lock. Generous for a loaded
// 2-core machine; a synchronous wait stalls it for the whole hold (1.5 s).
const MAX_GAP_MS = 100;
const TEST = { timeout: 30_000 };

const dir = mkdtempSync(join(tmpdir(), 'oncely-sqlite-lock-'));
let files = 0;
const stores: SqliteStore[] = [];
const holders: LockHolder[] = [];
after(async () => {
  for (const holder of holders) holder.kill();
  for (const store of stores) await store.close();
  await rm(dir, { recursive: true, force: true });
});

let tokens = 0;
const input = (id: string, now = Date.now()): AcquireInput => ({
  id,
  fingerprint: 'fp',
  token: `token-${++tokens}`,
  now,
  leaseUntil: now + 30_000,
  expiresAt: now + 86_400_000,
});

/** A store on a new file, opened (WAL, schema) before any lock is taken. */
async function openStore(busyTimeoutMs: number): Promise<{ store: SqliteStore; file: string }> {
  const file = join(dir, `lock-${++files}.db`);
  const store = sqliteStore({ database: file, busyTimeoutMs, sweepIntervalMs: 0 });
  stores.push(store);
  await store.get({ id: 'warm-up', now: Date.now() });
  return { store, file };
}

async function hold(file: string, ms = HOLD_MS): Promise<LockHolder> {
  const holder = await holdWriteLock(file, ms);
  holders.push(holder);
  return holder;
}

describe('sqliteStore while another process holds the write lock', () => {
  it(
    'waits for the lock without blocking the event loop, and every write succeeds once it is free',
    TEST,
    async (t) => {
      const { store, file } = await openStore(10_000);
      // A lease taken before the lock, to renew during it: renewals must not starve.
      const owned = await store.acquire(input('owned'));
      const holder = await hold(file);
      let readMs = Number.NaN;
      const { settled, maxGapMs } = await maxEventLoopGap(async () => {
        const acquiring = store.acquire(input('contended'));
        const extending = store.extend({
          id: 'owned',
          token: owned.record.token,
          now: Date.now(),
          leaseUntil: Date.now() + 60_000,
        });
        const sweeping = store.sweep();
        // Reads need no write lock in WAL mode, and are not queued behind the waiting writes.
        const started = performance.now();
        assert.equal((await store.get({ id: 'owned', now: Date.now() }))?.token, owned.record.token);
        readMs = performance.now() - started;
        const [acquired, extended, swept] = await Promise.all([acquiring, extending, sweeping]);
        return { acquired, extended, swept, at: performance.now() };
      });
      const releasedAt = await holder.released;
      assert.equal(settled.status, 'fulfilled', String(settled.status === 'rejected' && settled.reason));
      const { acquired, extended, swept, at } = settled.value;
      t.diagnostic(
        `max event-loop gap ${maxGapMs.toFixed(1)} ms during a ${HOLD_MS} ms lock; a read took ` +
          `${readMs.toFixed(1)} ms; the writes finished ${(at - holder.lockedAt).toFixed(0)} ms after the ` +
          `lock was taken, ${(at - releasedAt).toFixed(0)} ms after its release was reported`,
      );
      assert.ok(maxGapMs < MAX_GAP_MS, `the event loop stalled for ${maxGapMs.toFixed(1)} ms`);
      assert.ok(readMs < MAX_GAP_MS, `a read waited ${readMs.toFixed(1)} ms behind the lock`);
      assert.equal(acquired.acquired, true);
      assert.equal(extended, true, 'the lease renewal went through');
      assert.equal(swept, 0);
      assert.ok(at - holder.lockedAt >= HOLD_MS - 100, 'the writes really waited for the other process');
    },
  );

  it(
    'rejects with "database is locked" once busyTimeoutMs is spent, without blocking, and leaves nothing open',
    TEST,
    async (t) => {
      const budget = 300;
      const { store, file } = await openStore(budget);
      const holder = await hold(file);
      const now = Date.now();
      const { settled, maxGapMs } = await maxEventLoopGap(async () => {
        const started = performance.now();
        const outcomes = await Promise.allSettled([
          store.acquire(input('a', now)),
          store.complete({ id: 'a', token: 't', response: null, now, expiresAt: now + 1000 }),
          store.sweep(),
        ]);
        return { outcomes, waitedMs: performance.now() - started };
      });
      assert.equal(settled.status, 'fulfilled');
      const { outcomes, waitedMs } = settled.value;
      t.diagnostic(`rejected after ${waitedMs.toFixed(0)} ms; max event-loop gap ${maxGapMs.toFixed(1)} ms`);
      for (const outcome of outcomes) {
        assert.equal(outcome.status, 'rejected');
        assert.match(String(outcome.reason), /database is locked/);
      }
      assert.ok(waitedMs >= budget - 5, `gave up after ${waitedMs.toFixed(0)} ms, before its budget`);
      assert.ok(waitedMs < HOLD_MS - 200, `waited ${waitedMs.toFixed(0)} ms, past its budget`);
      assert.ok(maxGapMs < MAX_GAP_MS, `the event loop stalled for ${maxGapMs.toFixed(1)} ms`);

      await holder.released;
      assert.equal((await store.acquire(input('a'))).acquired, true, 'no transaction was left open');
    },
  );

  it('creates its schema on first use without blocking while the lock is taken', TEST, async () => {
    // A WAL file holding another application's table: this store's CREATE TABLE needs the lock.
    const file = join(dir, `lock-${++files}.db`);
    const setup = new DatabaseSync(file);
    setup.exec('PRAGMA journal_mode = WAL; CREATE TABLE other_app (x)');
    setup.close();
    const holder = await hold(file, 800);
    const store = sqliteStore({ database: file, sweepIntervalMs: 0 });
    stores.push(store);
    const { settled, maxGapMs } = await maxEventLoopGap(() => store.acquire(input('first')));
    await holder.released;
    assert.equal(settled.status, 'fulfilled', String(settled.status === 'rejected' && settled.reason));
    assert.equal(settled.value.acquired, true);
    assert.ok(maxGapMs < MAX_GAP_MS, `the event loop stalled for ${maxGapMs.toFixed(1)} ms`);
  });

  it(
    'reports health() writable: false while the lock is held, without waiting, and writable: true after',
    TEST,
    async () => {
      const { store, file } = await openStore(10_000);
      assert.deepEqual(await store.health(), { writable: true });
      const holder = await hold(file);
      const started = performance.now();
      assert.deepEqual(await store.health(), {
        writable: false,
        detail: 'the database is locked by another connection',
      });
      const tookMs = performance.now() - started;
      assert.ok(tookMs < MAX_GAP_MS, `health() took ${tookMs.toFixed(1)} ms`);
      await holder.released;
      assert.deepEqual(await store.health(), { writable: true });
      // health() took the lock and gave it back: nothing of it stays open.
      assert.equal((await store.acquire(input('after'))).acquired, true);
    },
  );
});
