/**
 * Full-jitter exponential backoff ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015):
 * the wait before retry `n` is uniform in `[0, min(maxDelayMs, baseDelayMs * 2^n))`. Spreading the
 * whole interval, not a band near its top, is what keeps a crowd of clients that failed together
 * from retrying together.
 */

/**
 * Milliseconds to wait before retry number `retry` (0 for the first retry).
 * @example
 * backoffDelay(3, { baseDelayMs: 100, maxDelayMs: 10_000, random: Math.random }); // in [0, 800)
 */
export function backoffDelay(
  retry: number,
  options: { baseDelayMs: number; maxDelayMs: number; random: () => number },
): number {
  // 2 ** retry overflows to Infinity for large retry counts; min() then gives the cap, as it should.
  const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** retry);
  const r = options.random();
  // An injected source may return 1 or leave [0, 1) altogether; stay inside the interval anyway.
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
  return Math.min(Math.floor(unit * cap), Math.max(0, Math.ceil(cap) - 1));
}
