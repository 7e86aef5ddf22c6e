/**
 * Waiting for a running request (`concurrency: 'wait'`). Waiters of one key in one process share one
 * watcher: it asks the store with `get` (one read, never a write), first every `waitPollMs`, then less
 * often up to `waitPollMaxMs`, and wakes every waiter once the record changed (completed, released,
 * taken over, or its lease lapsed). A completion or release made by this same process wakes its
 * waiters at once, without waiting for the next poll. A waiter whose client left stops waiting, and
 * the watcher stops when no waiter is left. So the store sees about one read per key and poll
 * interval, however many duplicates wait, instead of one acquire per waiter and poll interval.
 * Where the store can notify (`Store.watch`: Redis pub/sub), a completion in another process wakes
 * the watcher at once too; polling stays as the fallback for a lost notification.
 */

import { bounded } from './bounded.ts';
import type { IdempotencyRecord, Store } from './store.ts';

export type WaitResult =
  /** The record changed from the one the waiter saw: `null` when it is gone (released, expired). */
  | { kind: 'changed'; record: IdempotencyRecord | null }
  /** The waiter's own deadline passed first. */
  | { kind: 'timeout' }
  /** The waiter's signal aborted (its client went away). */
  | { kind: 'aborted' };

export interface WaitersOptions {
  store: Store;
  clock: () => number;
  pollMs: number;
  maxPollMs: number;
  storeTimeoutMs: number;
  /** A poll failed; the watcher polls again at its next interval. */
  onStoreError: (id: string, error: unknown) => void;
}

export interface Waiters {
  /** Wait until the record `seen` (in progress) changes, `until` passes, or `signal` aborts. */
  wait(seen: IdempotencyRecord, until: number, signal?: AbortSignal): Promise<WaitResult>;
  /** This process completed or released `id`: poll now. */
  changed(id: string): void;
  /** How many keys have a watcher now (for tests and metrics). */
  readonly watching: number;
}

interface Waiter {
  token: string;
  done: (result: WaitResult) => void;
}

interface Watcher {
  waiters: Set<Waiter>;
  /** Stops the store's notifications for this key, when the store has `watch`. */
  unwatch: (() => void) | undefined;
  interval: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  polling: boolean;
  /** A change was announced while a poll was under way: poll again right after it. */
  again: boolean;
}

export function waiters(options: WaitersOptions): Waiters {
  const { store, clock } = options;
  const watchers = new Map<string, Watcher>();

  const changedFor = (waiter: Waiter, record: IdempotencyRecord | null, now: number): boolean =>
    record === null ||
    record.state === 'completed' ||
    record.token !== waiter.token ||
    record.leaseUntil <= now;

  const schedule = (id: string, watcher: Watcher, ms: number): void => {
    if (watcher.timer) clearTimeout(watcher.timer);
    watcher.timer = setTimeout(() => void poll(id, watcher), ms);
  };

  async function poll(id: string, watcher: Watcher): Promise<void> {
    watcher.timer = undefined;
    if (watcher.polling) {
      watcher.again = true;
      return;
    }
    watcher.polling = true;
    try {
      const now = clock();
      const record = await bounded(store.get({ id, now }), options.storeTimeoutMs, 'get');
      for (const waiter of [...watcher.waiters]) {
        if (changedFor(waiter, record, clock())) waiter.done({ kind: 'changed', record });
      }
    } catch (error) {
      options.onStoreError(id, error);
    } finally {
      watcher.polling = false;
    }
    if (watchers.get(id) !== watcher) return; // every waiter left while the poll ran
    if (watcher.again) {
      watcher.again = false;
      schedule(id, watcher, 0);
      return;
    }
    watcher.interval = Math.min(watcher.interval * 2, options.maxPollMs);
    schedule(id, watcher, watcher.interval);
  }

  function wait(seen: IdempotencyRecord, until: number, signal?: AbortSignal): Promise<WaitResult> {
    if (signal?.aborted) return Promise.resolve({ kind: 'aborted' });
    const remaining = until - clock();
    if (remaining <= 0) return Promise.resolve({ kind: 'timeout' });
    const { id } = seen;
    let watcher = watchers.get(id);
    if (!watcher) {
      const created: Watcher = {
        waiters: new Set(),
        unwatch: undefined,
        interval: options.pollMs,
        timer: undefined,
        polling: false,
        again: false,
      };
      watcher = created;
      watchers.set(id, created);
      schedule(id, created, options.pollMs);
      // A store that can tell (Redis pub/sub) wakes the watcher at once; polling stays the fallback,
      // and is all there is when watching fails.
      try {
        created.unwatch = store.watch?.({ id }, () => {
          if (watchers.get(id) === created) schedule(id, created, 0);
        });
      } catch (error) {
        options.onStoreError(id, error);
      }
    }
    const own = watcher;
    return new Promise<WaitResult>((resolve) => {
      const deadline = setTimeout(() => waiter.done({ kind: 'timeout' }), remaining);
      const onAbort = (): void => waiter.done({ kind: 'aborted' });
      const waiter: Waiter = {
        token: seen.token,
        done: (result) => {
          if (!own.waiters.delete(waiter)) return;
          clearTimeout(deadline);
          signal?.removeEventListener('abort', onAbort);
          if (own.waiters.size === 0) {
            if (own.timer) clearTimeout(own.timer);
            own.unwatch?.();
            if (watchers.get(id) === own) watchers.delete(id);
          }
          resolve(result);
        },
      };
      own.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  return {
    wait,
    changed(id) {
      const watcher = watchers.get(id);
      if (watcher) {
        watcher.interval = options.pollMs;
        schedule(id, watcher, 0);
      }
    },
    get watching() {
      return watchers.size;
    },
  };
}
