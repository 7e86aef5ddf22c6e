/**
 * A child process for transactional-crash.test.ts: runs one request in transactional mode, inserting
 * its payment inside the transaction, and stops at a crash point announced on stdout, where the
 * parent kills it (SIGKILL) or leaves it frozen:
 *
 * - `in-work`: after the payment INSERT, before the completion UPDATE. Prints `inserted <pid>`.
 * - `after-complete`: after the fenced completion UPDATE succeeded, before COMMIT. Prints
 *   `completed <pid>`, then blocks its thread: the socket stays open, nothing more is sent (a frozen
 *   process, a hung host). `<pid>` is the server process of the transaction's connection.
 */
import { writeSync } from 'node:fs';
import { createOncely } from '@oncely/core';
import pg from 'pg';
import { postgresStore, transactional } from './index.ts';
import { DATABASE_URL } from './test-database.ts';

/** Parent → worker, as JSON in argv[2]. */
export interface CrashConfig {
  mode: 'in-work' | 'after-complete';
  table: string;
  namespace: string;
  payments: string;
  key: string;
  leaseMs: number;
  commitWindowMs: number;
}

// Synchronous writes: the parent must see the line even though this process is killed, or its
// thread blocked, right after.
const say = (line: string): void => {
  writeSync(1, `${line}\n`);
};
// Blocks the thread for good without exiting: what a frozen process looks like from the server.
const freeze = (): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
};

async function main(config: CrashConfig): Promise<void> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 3 });
  const store = postgresStore({
    pool,
    table: config.table,
    namespace: config.namespace,
    sweepIntervalMs: 0,
  });
  let backend = 0;
  const oncely = createOncely({
    store,
    leaseMs: config.leaseMs,
    onEvent: (event) => {
      // The engine emits `completed` once the fenced UPDATE returned true, before commitWith
      // resolves, hence before transactional mode sends COMMIT.
      if (event.type === 'completed' && config.mode === 'after-complete') {
        say(`completed ${backend}`);
        freeze();
      }
    },
  });
  const tx = transactional({ oncely, store, pool, commitWindowMs: config.commitWindowMs });
  await tx.execute({ scope: 'tenant', key: config.key, fingerprint: 'fp' }, async (client) => {
    backend = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const { rows } = await client.query(
      `INSERT INTO ${config.payments} (key, amount) VALUES ($1, 500) RETURNING id`,
      [config.key],
    );
    if (config.mode === 'in-work') {
      say(`inserted ${backend}`);
      await new Promise(() => setInterval(() => {}, 1000));
    }
    return { status: 201, headers: [], body: new TextEncoder().encode(JSON.stringify(rows[0])) };
  });
  say('committed');
  await pool.end();
}

main(JSON.parse(process.argv[2] ?? '{}') as CrashConfig).catch((error: unknown) => {
  say(`error ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
