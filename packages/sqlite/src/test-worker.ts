/**
 * A child process for sqlite-multiprocess.test.ts: opens its own store on the shared file, reports
 * `ready`, and on `go` reports `started` and fires its acquires for one id, all in flight at once.
 */
import { sqliteStore } from './sqlite-store.ts';

/** Parent → worker: fire `count` concurrent acquires for `id`. */
export interface GoMessage {
  type: 'go';
  id: string;
  fingerprint: string;
  count: number;
}

export interface AcquireOutcome {
  token: string;
  acquired: boolean;
  /** The token of the record the store returned: the caller's own, or the owner's. */
  seenToken: string;
  /** Wall-clock ms (fractional) when this call started and when it resolved (its transaction done). */
  start: number;
  end: number;
}

/** Worker → parent. */
export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'started'; pid: number; at: number }
  | { type: 'done'; pid: number; outcomes: AcquireOutcome[] }
  | { type: 'error'; message: string };

// timeOrigin + now() is wall-clock time with sub-millisecond resolution, comparable across processes.
const wallClock = (): number => performance.timeOrigin + performance.now();

const send = (message: WorkerMessage): Promise<void> =>
  new Promise((resolve, reject) => {
    process.send!(message, undefined, {}, (error) => (error ? reject(error) : resolve()));
  });

async function main(file: string | undefined, worker: string | undefined): Promise<void> {
  if (file === undefined || worker === undefined) throw new Error('usage: test-worker.ts <file> <worker>');
  const store = sqliteStore({ database: file, sweepIntervalMs: 0 });
  // Open the file, set WAL and prepare statements now, so the timed acquires measure only acquiring.
  await store.get({ id: 'warm-up', now: Date.now() });
  const go = await new Promise<GoMessage>((resolve) => {
    process.once('message', (message) => resolve(message as GoMessage));
    void send({ type: 'ready', pid: process.pid });
  });

  // Tell the parent before the first call, so that "started" is known to precede every attempt.
  await send({ type: 'started', pid: process.pid, at: wallClock() });
  const now = Date.now();
  const calls = Array.from({ length: go.count }, async (_, i): Promise<AcquireOutcome> => {
    const token = `w${worker}-${i}`;
    const start = wallClock();
    const pending = store.acquire({
      id: go.id,
      fingerprint: go.fingerprint,
      token,
      now,
      leaseUntil: now + 60_000,
      expiresAt: now + 3_600_000,
    });
    // The store waits for the parent's lock asynchronously: the transaction has committed once the
    // call resolves, not when it returns.
    const result = await pending;
    const end = wallClock();
    return { token, acquired: result.acquired, seenToken: result.record.token, start, end };
  });
  const outcomes = await Promise.all(calls);
  await store.close();
  await send({ type: 'done', pid: process.pid, outcomes });
}

const [file, worker] = process.argv.slice(2);
main(file, worker)
  .catch((error: unknown) =>
    send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  )
  .finally(() => process.disconnect());
