import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { nextMessage } from '@oncely/conformance';
import { recordId } from '@oncely/core';
import type pg from 'pg';
import { postgresStore } from './index.ts';
import { countRows, dropTables, testPool, uniqueName } from './test-database.ts';
// Types only: importing a value would run the worker in this process.
import type { GoMessage, WorkerMessage } from './test-worker.ts';

const WORKERS = 4;
const CALLS = 50;
const POOL_SIZE = 10; // per worker, as in test-worker.ts

/** The next message of `type` from `child`; rejects on a worker error or an early exit. */
const next = <T extends WorkerMessage['type']>(child: ChildProcess, type: T) =>
  nextMessage<WorkerMessage, T>(child, type);

let pool: pg.Pool;
const table = uniqueName('oncely_mp');
const side = uniqueName('executions');
const children: ChildProcess[] = [];
before(async () => {
  pool = await testPool({ max: 4 });
  await postgresStore({ pool, table }).migrate();
  await pool.query(`CREATE TABLE ${side} (worker integer NOT NULL, call integer NOT NULL)`);
});
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
  await dropTables(pool, table, side);
  await pool.end();
});

it(`runs the work once among ${WORKERS} processes × ${CALLS} concurrent executions of one key`, {
  timeout: 60_000,
}, async (t) => {
  const namespace = uniqueName('ns');
  const key = 'order_42:pay:1';
  const worker = new URL('./test-worker.ts', import.meta.url);
  for (let w = 0; w < WORKERS; w++) {
    // The child inherits execArgv, so it runs .ts and resolves @oncely/core like this process.
    const child = fork(worker, [table, side, namespace, String(w)], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.push(child);
  }
  await Promise.all(children.map((child) => next(child, 'ready')));

  // The starting gate: the parent holds a SHARE lock on the records table, which every acquire (an
  // INSERT) must wait for. Once every worker's pool has all its connections blocked there, the
  // gate opens and 4 × 10 acquires from 4 processes hit one row at the same instant; the other
  // calls queue in their pools and follow as connections free up.
  const gate = await pool.connect();
  const started = Promise.all(children.map((child) => next(child, 'started')));
  const done = Promise.all(children.map((child) => next(child, 'done')));
  // Awaited below; until then, a worker failing early must not count as an unhandled rejection.
  done.catch(() => {});
  let blocked = 0;
  try {
    await gate.query('BEGIN');
    await gate.query(`LOCK TABLE ${table} IN SHARE MODE`);
    const go: GoMessage = { type: 'go', key, count: CALLS };
    for (const child of children) child.send(go);
    await started;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      blocked = await countRows(pool, 'pg_locks', 'relation = $1::regclass AND NOT granted', [table]);
      if (blocked >= WORKERS * POOL_SIZE) break;
      await sleep(20);
    }
  } finally {
    await gate.query('ROLLBACK');
    gate.release();
  }
  assert.equal(blocked, WORKERS * POOL_SIZE, 'every connection of every worker waited at the gate');
  const reports = await done;

  const outcomes = reports.flatMap((r) => r.outcomes);
  assert.equal(outcomes.length, WORKERS * CALLS);
  assert.equal(await countRows(pool, side), 1, 'the work ran exactly once');
  const executed = (await pool.query(`SELECT worker, call FROM ${side}`)).rows[0];
  for (const outcome of outcomes) {
    assert.deepEqual(outcome, { ok: executed }, 'every call returned the one execution’s result');
  }
  const record = await postgresStore({ pool, table, namespace, sweepIntervalMs: 0 }).get({
    id: recordId('tenant', key),
    now: Date.now(),
  });
  assert.equal(record?.state, 'completed');
  t.diagnostic(`executed by worker ${executed.worker}, call ${executed.call}; ${blocked} acquires gated`);
});
