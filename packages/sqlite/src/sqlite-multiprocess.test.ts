import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { nextMessage } from '@oncely/conformance';
import { sqliteStore } from './index.ts';
// Types only: importing a value would run the worker in this process.
import type { AcquireOutcome, GoMessage, WorkerMessage } from './test-worker.ts';

const WORKERS = 4;
const CALLS = 50;

// The same clock as the workers': wall-clock ms with sub-millisecond resolution.
const wallClock = (): number => performance.timeOrigin + performance.now();

/** The next message of `type` from `child`; rejects on a worker error or an early exit. */
const next = <T extends WorkerMessage['type']>(child: ChildProcess, type: T) =>
  nextMessage<WorkerMessage, T>(child, type);

const dir = mkdtempSync(join(tmpdir(), 'oncely-sqlite-mp-'));
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
  await rm(dir, { recursive: true, force: true });
});

it(`lets exactly one of ${WORKERS * CALLS} acquires from ${WORKERS} processes win`, {
  timeout: 60_000,
}, async (t) => {
  const file = join(dir, 'shared.db');
  // Create the schema up front, so the workers race on acquire, not on CREATE TABLE.
  const setup = sqliteStore({ database: file, sweepIntervalMs: 0 });
  await setup.get({ id: 'warm-up', now: Date.now() });
  await setup.close();

  const worker = new URL('./test-worker.ts', import.meta.url);
  for (let w = 0; w < WORKERS; w++) {
    // The child inherits execArgv, so it runs .ts and resolves @oncely/core like this process.
    const child = fork(worker, [file, String(w)], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.push(child);
  }
  await Promise.all(children.map((child) => next(child, 'ready')));

  // The starting gate: the parent holds the write lock while every worker fires its first acquire,
  // so all four processes are in flight and blocked at once; releasing the lock starts the race. A
  // time-based start is not enough here: on a 2-CPU machine one process can be descheduled for longer
  // than another needs for all its 50 acquires, and the test would race nobody.
  const started = Promise.all(children.map((child) => next(child, 'started')));
  const done = Promise.all(children.map((child) => next(child, 'done')));
  // Awaited below; until then, a worker failing early must not count as an unhandled rejection.
  done.catch(() => {});
  const gate = new DatabaseSync(file);
  let releasedAt = Number.NaN;
  try {
    gate.exec('BEGIN IMMEDIATE');
    const go: GoMessage = { type: 'go', id: 'contended', fingerprint: 'fp', count: CALLS };
    for (const child of children) child.send(go);
    await started;
    await sleep(25); // time for the last worker to get from "started" to waiting on the lock
    releasedAt = wallClock();
    gate.exec('ROLLBACK');
  } finally {
    if (gate.isTransaction) gate.exec('ROLLBACK');
    gate.close();
  }
  const reports = await done;

  const all: Array<AcquireOutcome & { worker: number }> = reports.flatMap((r, w) =>
    r.outcomes.map((o) => ({ ...o, worker: w })),
  );
  assert.equal(all.length, WORKERS * CALLS);
  assert.equal(new Set(all.map((o) => o.token)).size, WORKERS * CALLS, 'every call had its own token');
  const winners = all.filter((o) => o.acquired);
  assert.equal(winners.length, 1, `expected exactly one winner, got ${winners.length}`);
  const winner = winners[0]!.token;
  for (const o of all)
    assert.equal(o.seenToken, winner, `call ${o.token} saw ${o.seenToken}, not the winner`);

  const stored = sqliteStore({ database: file, sweepIntervalMs: 0 });
  const record = await stored.get({ id: 'contended', now: Date.now() });
  await stored.close();
  assert.equal(record?.token, winner, 'the file holds the winner');
  assert.equal(record?.state, 'in_progress');

  // The test means something only if the processes really ran at the same time: every worker's
  // window (first call started .. last transaction finished) must contain the instant the gate
  // opened. This also checks that no acquire got past a write lock held by another process.
  const windows = reports.map((r) => ({
    first: Math.min(...r.outcomes.map((o) => o.start)),
    last: Math.max(...r.outcomes.map((o) => o.end)),
  }));
  // How often consecutive transactions (by completion time) came from different processes.
  const byEnd = [...all].sort((a, b) => a.end - b.end);
  let switches = 0;
  for (let i = 1; i < byEnd.length; i++) if (byEnd[i]!.worker !== byEnd[i - 1]!.worker) switches++;
  const ms = (n: number): string => `${n.toFixed(2)}ms`;
  t.diagnostic(
    `winner ${winner}; per worker, first call before the gate opened / last transaction after: ` +
      `${windows.map((w) => `${ms(releasedAt - w.first)} / ${ms(w.last - releasedAt)}`).join(', ')}; ` +
      `process switches ${switches}`,
  );
  windows.forEach((w, i) => {
    assert.ok(w.first < releasedAt, `worker ${i} started its first acquire after the gate opened`);
    assert.ok(w.last > releasedAt, `worker ${i} finished an acquire while another process held the lock`);
  });
});
