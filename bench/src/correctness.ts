/**
 * Correctness beside speed: 20 keys × 50 concurrent duplicates at once, then one retry per key, and
 * the handler's own count of how often each key's work ran (it must be 1).
 */
import { PAYMENT_BODY } from './load.ts';
import type { Target } from './target.ts';

export const CHECK_KEYS = 20;
export const CHECK_DUPLICATES = 50;
/**
 * The handler waits this long (its `x-work-ms` header) before counting: a stand-in for the payment
 * provider's round trip, the window in which real duplicates arrive.
 */
export const CHECK_WORK_MS = 20;

export interface CorrectnessResult {
  /** How often each key's side effect ran, one entry per key. */
  effectsPerKey: number[];
  /** Keys whose side effect ran other than exactly once. */
  wrongKeys: number;
  /** Status codes of the 1 000 concurrent requests (`error` for a failed request). */
  statuses: Record<string, number>;
  /** Status codes of one sequential retry per key after the storm. */
  retryStatuses: Record<string, number>;
  /** Side effects per key after that retry (a replay must not run the work again). */
  effectsAfterRetry: number[];
  /** Retries whose body differed from the body of the 2xx the first execution sent. */
  retryBodyMismatches: number;
}

export async function checkCorrectness(target: Target): Promise<CorrectnessResult> {
  const keys = Array.from({ length: CHECK_KEYS }, (_, i) => `chk-${target.tag}-${i}`);
  const statuses: Record<string, number> = {};
  const firstBodies = new Map<string, string>();
  const send = async (key: string) => {
    try {
      const response = await fetch(`${target.url}/payments`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': key,
          'x-work-ms': String(CHECK_WORK_MS),
        },
        body: PAYMENT_BODY,
      });
      const text = await response.text();
      return { status: String(response.status), text };
    } catch {
      return { status: 'error', text: '' };
    }
  };
  await Promise.all(
    keys.flatMap((key) =>
      Array.from({ length: CHECK_DUPLICATES }, async () => {
        const result = await send(key);
        statuses[result.status] = (statuses[result.status] ?? 0) + 1;
        if (result.status.startsWith('2') && !firstBodies.has(key)) firstBodies.set(key, result.text);
      }),
    ),
  );
  // Give fire-and-forget persistence (a peer stores the response after sending it) time to land.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const during = await target.handler.effects(keys);
  const retryStatuses: Record<string, number> = {};
  let retryBodyMismatches = 0;
  // One retry per key, the keys side by side: each key sees exactly one request now.
  const retries = await Promise.all(keys.map(async (key) => [key, await send(key)] as const));
  for (const [key, result] of retries) {
    retryStatuses[result.status] = (retryStatuses[result.status] ?? 0) + 1;
    const first = firstBodies.get(key);
    if (first !== undefined && result.status.startsWith('2') && result.text !== first) {
      retryBodyMismatches++;
    }
  }
  const after = await target.handler.effects(keys);
  const effectsPerKey = keys.map((key) => during.perKey[key] ?? 0);
  return {
    effectsPerKey,
    wrongKeys: effectsPerKey.filter((n) => n !== 1).length,
    statuses,
    retryStatuses,
    effectsAfterRetry: keys.map((key) => after.perKey[key] ?? 0),
    retryBodyMismatches,
  };
}
