/**
 * Asking a store whether it works: a read of a record that does not exist, within a time bound, and
 * `health()` where the store has it. The health check answers with it; the CLI waits on it at
 * start-up before it listens.
 */

import { randomBytes } from 'node:crypto';
import type { Store } from '@oncely/core';

/** What the probe found: `ok`, `degraded` (reachable, cannot write) or `unavailable`. */
export type StoreCheck =
  | { status: 'ok' }
  | { status: 'degraded'; detail: string }
  | { status: 'unavailable'; error: string };

/** The store answers a `get` of a random id (and `health()`, where it has one) within `timeoutMs`. */
export async function probeStore(
  store: Store,
  options: { timeoutMs: number; now: () => number },
): Promise<StoreCheck> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
  });
  const probe = async (): Promise<StoreCheck> => {
    await store.get({ id: randomBytes(32).toString('hex'), now: options.now() });
    const health = await store.health?.();
    if (health === undefined || health.writable) return { status: 'ok' };
    return { status: 'degraded', detail: health.detail ?? 'the store cannot take writes' };
  };
  try {
    return await Promise.race([probe(), timeout]);
  } catch (error) {
    return { status: 'unavailable', error: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}
