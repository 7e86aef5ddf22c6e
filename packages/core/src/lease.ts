/**
 * Keeping a lease while the work runs: renew it every leaseMs/3, and abort the work's signal once the
 * lease can no longer be shown to be ours. A unit of its own, so its timeline is tested on its own.
 *
 *   acquire            renew        renew        renew (fails)  renew (hangs)   lease end
 *   |------------------|------------|------------|--------------|---------------|
 *   leaseUntil moves forward with each renewal that lands; the watchdog sits at the current lease
 *   end, so a renewal that neither succeeds nor fails still aborts the work when the lease lapses.
 */

import { bounded } from './bounded.ts';
import { OncelyError } from './errors.ts';
import type { Store } from './store.ts';

export interface LeaseKeeperOptions {
  store: Store;
  id: string;
  token: string;
  leaseMs: number;
  /** The lease end the acquire wrote. */
  leaseUntil: number;
  /** The record's retention end: a lease is never renewed past it. */
  expiresAt: number;
  clock: () => number;
  /** Bound of each `extend` call. */
  storeTimeoutMs: number;
  /** Engine time past which the work is abandoned (the execution bound); `Infinity` for none. */
  deadline: number;
  /**
   * The deadline passed: the reason to abort the work with, or `undefined` to keep the lease (the
   * work already finished and its completion is being retried).
   */
  onDeadline: () => OncelyError | undefined;
  /** A renewal failed (it is retried at the next interval while the lease still holds). */
  onStoreError: (error: unknown) => void;
  /** The lease is lost: the store refused a renewal, or the lease end passed without one. */
  onLost: () => void;
}

export interface LeaseKeeper {
  /** Aborts when the lease is lost (`ERR_ONCELY_LEASE_LOST`) or the keeper is ended with a reason. */
  readonly signal: AbortSignal;
  /** True while renewals go on: as far as this process knows, the key is still its own. */
  readonly held: boolean;
  /** Stop renewing, without aborting the work (it finished: its outcome is being written). */
  stop(): void;
  /** Stop renewing and abort the work with `reason` (the lease is left to lapse). */
  end(reason: OncelyError): void;
}

/**
 * Start renewing the lease that an acquire just won. One timer at a time: it fires at the next
 * renewal or at the deadline, whichever is first, and a watchdog at the lease end exists only while
 * a renewal is outstanding. Work that finishes before its first renewal, most requests, costs one.
 */
export function keepLease(options: LeaseKeeperOptions): LeaseKeeper {
  const { store, id, token, leaseMs, expiresAt, clock } = options;
  const controller = new AbortController();
  const every = Math.max(1, Math.floor(leaseMs / 3));
  let leaseUntil = options.leaseUntil;
  let deadline = options.deadline;
  let held = true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let watchdog: ReturnType<typeof setTimeout> | undefined;

  const stop = (): void => {
    held = false;
    if (timer) clearTimeout(timer);
    if (watchdog) clearTimeout(watchdog);
  };
  const end = (reason: OncelyError): void => {
    if (!held) return;
    stop();
    controller.abort(reason);
  };
  const lose = (): void => {
    if (!held) return;
    options.onLost();
    end(
      new OncelyError(
        'ERR_ONCELY_LEASE_LOST',
        'The lease on this key could not be renewed; another request may own it now.',
      ),
    );
  };

  // setTimeout after each renewal, not setInterval: renewals never overlap. Every leaseMs/3, so two
  // renewals may fail (a slow store, a GC pause) before the lease lapses.
  const schedule = (): void => {
    const wait = Math.max(1, Math.min(every, deadline - clock()));
    timer = setTimeout(tick, wait);
    (timer as { unref?: () => void }).unref?.();
  };
  const tick = (): void => {
    timer = undefined;
    if (!held) return;
    const now = clock();
    if (now >= deadline) {
      const reason = options.onDeadline();
      if (reason) {
        end(reason);
        return;
      }
      deadline = Number.POSITIVE_INFINITY;
    }
    // The event loop was held past the lease end (a long synchronous task): another request may
    // own the key by now.
    if (now >= leaseUntil) {
      lose();
      return;
    }
    void renew(now);
  };
  const renew = async (now: number): Promise<void> => {
    // The lease end stands while a renewal is out: one that neither succeeds nor fails (a pool with
    // no free connection) must not keep the work going past it.
    watchdog = setTimeout(lose, Math.max(0, leaseUntil - now));
    (watchdog as { unref?: () => void }).unref?.();
    const next = Math.min(now + leaseMs, expiresAt);
    // Retention ends before this lease could be extended: the record is replaced then. The watchdog
    // aborts the work at the lease end instead of renewing into nothing.
    if (next <= leaseUntil) return;
    try {
      // Never longer than what is left of the lease: past its end the answer no longer matters.
      const wait = Math.max(1, Math.min(options.storeTimeoutMs, leaseUntil - now));
      const ok = await bounded(store.extend({ id, token, now, leaseUntil: next }), wait, 'extend');
      if (!held) return;
      if (!ok) return lose();
      leaseUntil = next;
    } catch (error) {
      if (!held) return;
      options.onStoreError(error);
      // We cannot know whether the store still sees us as owner; past our own lease end we must assume not.
      if (clock() >= leaseUntil) return lose();
    }
    clearTimeout(watchdog);
    watchdog = undefined;
    if (held) schedule();
  };

  schedule();
  return {
    signal: controller.signal,
    get held() {
      return held;
    },
    stop,
    end,
  };
}
