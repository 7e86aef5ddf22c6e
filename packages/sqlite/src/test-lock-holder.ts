/**
 * Test helper: another process that takes a SQLite file's write lock (`BEGIN IMMEDIATE`) and holds
 * it for a while, the way a second application on the same host, or a long migration, would. Used by
 * sqlite-lock.test.ts and by the gateway's healthz test. Another process, not another connection of
 * the test process: a lock held in this process could never show that this process keeps running.
 */

import { spawn } from 'node:child_process';

// Plain JavaScript run with `-e`, so the child needs neither the .ts sources nor their loader.
const HOLDER = `
import { DatabaseSync } from 'node:sqlite';
const [file, ms] = process.argv.slice(1);
const db = new DatabaseSync(file);
db.exec('BEGIN IMMEDIATE');
process.stdout.write('locked\\n');
setTimeout(() => {
  db.exec('COMMIT');
  db.close();
  process.stdout.write('released\\n');
}, Number(ms));
`;

export interface LockHolder {
  /**
   * Resolves with the time (`performance.now()` of this process) the child reported the lock
   * released, once it committed and closed its connection; rejects if it failed.
   */
  released: Promise<number>;
  /** Monotonic time (`performance.now()` of this process) when the child reported the lock taken. */
  lockedAt: number;
  /** End the child early (its lock goes with it). */
  kill(): void;
}

/**
 * Spawn a process that takes the write lock of `file` and releases it after `holdMs`. Resolves once
 * the child holds the lock. The file should already exist, in WAL mode, with the store's schema.
 */
export function holdWriteLock(file: string, holdMs: number): Promise<LockHolder> {
  // process.execPath: the Node that runs the tests (24 under `npx node` and npm scripts).
  const child = spawn(process.execPath, ['--input-type=module', '-e', HOLDER, file, String(holdMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let releasedAt = Number.NaN;
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  const released = new Promise<number>((resolve, reject) => {
    void exited.then((code) =>
      out.includes('released\n')
        ? resolve(releasedAt)
        : reject(new Error(`the lock holder exited (${code}) without releasing:\n${out}\n${err}`)),
    );
  });
  // Awaited by the tests that care; a holder killed on purpose must not be an unhandled rejection.
  released.catch(() => {});
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      const before = out;
      out += chunk.toString();
      if (Number.isNaN(releasedAt) && out.includes('released\n')) releasedAt = performance.now();
      if (!before.includes('locked\n') && out.includes('locked\n')) {
        resolve({ released, lockedAt: performance.now(), kill: () => child.kill('SIGKILL') });
      }
    });
    void exited.then((code) => {
      if (!out.includes('locked\n')) reject(new Error(`the lock holder exited (${code}):\n${err}`));
    });
  });
}

/**
 * The longest gap between ticks of a 10 ms interval while `work` runs: how long the event loop was
 * blocked at most. A loop that is never blocked shows gaps of 10 ms plus scheduling noise.
 */
export async function maxEventLoopGap<T>(
  work: () => Promise<T>,
): Promise<{ settled: PromiseSettledResult<T>; maxGapMs: number }> {
  let last = performance.now();
  let maxGapMs = 0;
  const tick = (): void => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
  };
  const timer = setInterval(tick, 10);
  // `work()` is called inside the settled promise: a store that blocks synchronously blocks here,
  // and the tick after it measures the whole block.
  const [settled] = await Promise.allSettled([Promise.resolve().then(work)]);
  tick();
  clearInterval(timer);
  return { settled: settled!, maxGapMs };
}
