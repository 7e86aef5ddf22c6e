/**
 * Every store call the engine makes is bounded in time (DESIGN §7): a stalled server, a pool with no
 * free connection or a client that queues commands while it reconnects must never hold a request,
 * or a lease, for longer than the engine decided to wait.
 */

/** The store did not answer within `storeTimeoutMs`. Its call may still land later. */
export class StoreTimeoutError extends Error {
  override readonly name = 'StoreTimeoutError';
  constructor(operation: string, ms: number) {
    super(`the store did not answer ${operation} within ${ms} ms`);
  }
}

/**
 * `call`'s promise, or a `StoreTimeoutError` after `ms`. The call itself goes on (a promise cannot
 * be cancelled, and a command already written to a socket will run): callers that must know how it
 * ended keep `call` and look at it later (see the engine's orphan release after a failed acquire).
 */
export function bounded<T>(call: Promise<T>, ms: number, operation: string): Promise<T> {
  // One timer and one promise per call, on the path of every request: no race() or finally().
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreTimeoutError(operation, ms)), ms);
    call.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** A wait that never keeps the process alive: background clean-up gives way to a shutdown. */
export function backgroundSleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    (timer as { unref?: () => void }).unref?.();
  });
}
