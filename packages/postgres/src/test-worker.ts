/**
 * A child process for postgres-multiprocess.test.ts: its own pool, store and engine on the shared
 * table. On `go` it reports `started` and fires `count` concurrent `oncely.run` calls of one key, each
 * of which, if it executes, inserts a row into the side table: one row per execution, committed on
 * its own, so every execution is counted, whatever happens after it.
 */
import { createOncely, isOncelyError } from '@oncely/core';
import pg from 'pg';
import { postgresStore } from './index.ts';
import { DATABASE_URL } from './test-database.ts';

/** Parent → worker. */
export interface GoMessage {
  type: 'go';
  key: string;
  count: number;
}

/** What one call returned: the result (its own, or the replayed winner's), or a rejection's code. */
export type CallOutcome = { ok: { worker: number; call: number } } | { error: string };

/** Worker → parent. */
export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'started'; pid: number }
  | { type: 'done'; pid: number; outcomes: CallOutcome[] }
  | { type: 'error'; message: string };

const send = (message: WorkerMessage): Promise<void> =>
  new Promise((resolve, reject) => {
    process.send!(message, undefined, {}, (error) => (error ? reject(error) : resolve()));
  });

async function main(table: string, side: string, namespace: string, worker: number): Promise<void> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10 });
  const store = postgresStore({ pool, table, namespace, sweepIntervalMs: 0 });
  // 'wait': duplicates poll (one acquire each time) and replay the winner's result, so every call
  // returns it, rather than most of them answering 409.
  const oncely = createOncely({ store, concurrency: 'wait', maxWaitMs: 30_000, waitPollMs: 20 });
  await pool.query('SELECT 1');
  const go = await new Promise<GoMessage>((resolve) => {
    process.once('message', (message) => resolve(message as GoMessage));
    void send({ type: 'ready', pid: process.pid });
  });
  await send({ type: 'started', pid: process.pid });
  const outcomes = await Promise.all(
    Array.from({ length: go.count }, async (_, call): Promise<CallOutcome> => {
      try {
        const ok = await oncely.run({ scope: 'tenant', key: go.key }, async () => {
          await pool.query(`INSERT INTO ${side} (worker, call) VALUES ($1, $2)`, [worker, call]);
          await new Promise((resolve) => setTimeout(resolve, 200));
          return { worker, call };
        });
        return { ok };
      } catch (error) {
        return { error: isOncelyError(error) ? error.code : String(error) };
      }
    }),
  );
  await store.close();
  await pool.end();
  await send({ type: 'done', pid: process.pid, outcomes });
}

const [table, side, namespace, worker] = process.argv.slice(2);
main(table!, side!, namespace!, Number(worker))
  .catch((error: unknown) =>
    send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  )
  .finally(() => process.disconnect());
