/**
 * A store wrapper that reports how long each call took, for the store latency histogram. Everything
 * else is the wrapped store's own: same results, same errors, same `name`.
 */

import type { Store } from '@oncely/core';
import type { TimedOperation } from './metrics.ts';

export type StoreObserver = (operation: TimedOperation, seconds: number, failed: boolean) => void;

/**
 * `store` with every step timed through `observe`; `close`, and `health` when the store has one,
 * are passed through untimed (a health probe is not a step of a request).
 */
export function timedStore(store: Store, observe: StoreObserver): Store {
  const timed =
    <I, R>(operation: TimedOperation, call: (input: I) => Promise<R>) =>
    async (input: I): Promise<R> => {
      const started = performance.now();
      try {
        const result = await call(input);
        observe(operation, (performance.now() - started) / 1000, false);
        return result;
      } catch (error) {
        observe(operation, (performance.now() - started) / 1000, true);
        throw error;
      }
    };
  return {
    name: store.name,
    // Bound: stores with private fields or `this`-based methods keep working.
    acquire: timed('acquire', store.acquire.bind(store)),
    complete: timed('complete', store.complete.bind(store)),
    extend: timed('extend', store.extend.bind(store)),
    release: timed('release', store.release.bind(store)),
    get: timed('get', store.get.bind(store)),
    close: store.close.bind(store),
    // Only when the store has one: the health check asks `health` whether the store can write.
    ...(store.health ? { health: store.health.bind(store) } : {}),
  };
}
