/**
 * Which outcomes are kept for replay. Anything not kept releases the key, so a retry runs again.
 *
 * `success-only` is the default because validation often runs inside handlers: a stored 400 would
 * turn the client's corrected retry (same key, fixed body) into a 422. `final-errors` also keeps the
 * 4xx that a retry cannot change; `stripe` keeps every response once the handler began.
 */
export type CachePreset = 'success-only' | 'final-errors' | 'stripe';

/** A preset, or a predicate on the response status: `true` keeps the response for replay. */
export type CachePolicy = CachePreset | ((status: number) => boolean);

/** 4xx a client can cure by waiting, re-authenticating or fixing the request: never kept by `final-errors`. */
const RETRYABLE_4XX = new Set([400, 401, 403, 408, 409, 422, 425, 429]);

export const CACHE_PRESETS: readonly CachePreset[] = ['success-only', 'final-errors', 'stripe'];

/** Resolve a policy to a predicate on the status code. */
export function cachePredicate(policy: CachePolicy): (status: number) => boolean {
  if (typeof policy === 'function') return policy;
  switch (policy) {
    case 'success-only':
      return (status) => status >= 200 && status < 300;
    case 'final-errors':
      return (status) =>
        (status >= 200 && status < 300) || (status >= 400 && status < 500 && !RETRYABLE_4XX.has(status));
    case 'stripe':
      return () => true;
  }
}
